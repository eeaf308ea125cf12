"""Print evaluation reports as a Markdown table (as experiments/RESULTS.md quotes them): the
mean return after each adaptation step, and the gain of the last step over step 0, paired
per task, with its 95% confidence interval.

    python experiments/report_table.py experiments/results/halfcheetah_rand_params/*.json
    python experiments/report_table.py --by direction experiments/results/halfcheetah_dir/*.json

``--by PARAM`` gives one row per report and value of the task parameter PARAM.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from metarl.evaluation import AdaptationReport


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="report files (.json or .csv)")
    parser.add_argument("--by", metavar="PARAM", help="a row per value of this task parameter")
    args = parser.parse_args()
    reports = [AdaptationReport.load(path) for path in args.reports]
    if args.by:
        values = sorted({json.dumps(t[args.by]) for r in reports for t in r.tasks})
        reports = [
            replace(part, label=f"{r.label}, {args.by} = {value}")
            for r in reports
            for value in values
            for part in [r.where(**{args.by: json.loads(value)})]
        ]
    reports.sort(key=lambda r: -r.mean_return[-1])
    steps = max(len(r.steps) for r in reports)
    header = " | ".join(f"step {k}" for k in range(steps))
    print(f"| | {header} | gain at step {steps - 1} (paired 95% CI) |")
    print("|---|" + "---:|" * steps + "---:|")
    for report in reports:
        cells = " | ".join(f"{m:.1f}" for m in report.mean_return)
        gain, (low, high) = report.gain(report.steps[-1])
        print(f"| {report.label} | {cells} | {gain:+.1f} [{low:+.1f}, {high:+.1f}] |")
    first = reports[0]
    print(
        f"\n{first.family}, {first.num_tasks} tasks ({first.info.get('task_set', '?')}), "
        f"{first.episodes} episodes per step, seed {first.seed}"
    )


if __name__ == "__main__":
    main()
