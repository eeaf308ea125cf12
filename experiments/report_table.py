"""Print evaluation reports as a Markdown table (as experiments/RESULTS.md and README quote
them): the training budget, the mean return after each adaptation step, and the gain of the
last step over step 0, paired per task, with its 95% confidence interval.

    python experiments/report_table.py experiments/results/halfcheetah_rand_params/*.json
    python experiments/report_table.py --by direction experiments/results/halfcheetah_dir/*.json
    python experiments/report_table.py --oracle-fraction 0.8 experiments/results/X/*.json

``--by PARAM`` gives one row per report and value of the task parameter PARAM.
``--oracle-fraction F`` adds how many adaptation episodes each needs before its mean return
reaches F times the oracle's (the report whose learner is ``oracle``, its mean over steps).
``--versus REPORT`` adds, paired per task against REPORT (same tasks), how much higher each
one's return is at the last step and how much more its adaptation gained; ``--step K`` makes
that comparison at step K instead (e.g. k = 1 against a report with steps 0 and 1 only).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from metarl.evaluation import AdaptationReport


def training_budget(report: AdaptationReport) -> str:
    """The env steps of training behind a report: meta-training's, PPO's for pretrained and
    oracle, none for a random initialisation; PPO from scratch trains on the adaptation
    episodes only."""
    if report.learner == "ppo-scratch":
        return "(the adaptation episodes)"
    if report.learner == "random-init":
        return "0"
    steps = report.info.get("ppo_timesteps", report.info.get("env_steps"))
    return f"{steps / 1e6:.0f}M" if isinstance(steps, int) else "?"


def episodes_to_reach(report: AdaptationReport, target: float) -> str:
    """Adaptation episodes before the first step whose mean return reaches ``target``."""
    for k, mean in enumerate(report.mean_return):
        if mean >= target:
            return str(k * report.episodes)
    return f"> {report.steps[-1] * report.episodes}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="report files (.json or .csv)")
    parser.add_argument("--by", metavar="PARAM", help="a row per value of this task parameter")
    parser.add_argument(
        "--oracle-fraction", type=float, metavar="F", help="episodes to reach F x the oracle"
    )
    parser.add_argument("--versus", metavar="REPORT", help="paired differences against it")
    parser.add_argument(
        "--step", type=int, metavar="K", help="with --versus: compare at step K (default: last)"
    )
    args = parser.parse_args()
    if args.step is not None and args.versus is None:
        parser.error("--step compares against --versus REPORT; give both")
    reports = [AdaptationReport.load(path) for path in args.reports]
    versus = AdaptationReport.load(args.versus) if args.versus else None
    target = None
    if args.oracle_fraction is not None:
        oracles = [r for r in reports if r.learner == "oracle"]
        if len(oracles) != 1:
            parser.error("--oracle-fraction needs exactly one oracle report among the reports")
        target = args.oracle_fraction * float(np.mean(oracles[0].mean_return))
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
    last = steps - 1
    compared = last if args.step is None else args.step
    if versus is not None and not all(compared in r.steps for r in [*reports, versus]):
        parser.error(f"step {compared} is not in every report (and in --versus)")
    extra = f" episodes to {args.oracle_fraction:g} x oracle |" if target is not None else ""
    if versus is not None:
        extra += f" step {compared} minus {versus.label}'s | gain minus {versus.label}'s |"
    print(f"| | training env steps | {header} | gain at step {last} (paired 95% CI) |{extra}")
    print("|---|---:|" + "---:|" * steps + "---:|" + "---:|" * extra.count("|"))
    for report in reports:
        cells = " | ".join(f"{m:.1f}" for m in report.mean_return)
        gain, (low, high) = report.gain(report.steps[-1])
        row = f"| {report.label} | {training_budget(report)} | {cells} | "
        row += f"{gain:+.1f} [{low:+.1f}, {high:+.1f}] |"
        if target is not None:
            row += f" {episodes_to_reach(report, target)} |"
        if versus is not None:
            for reference in (None, 0):
                diff, (low, high) = report.paired_difference(versus, compared, reference)
                row += f" {diff:+.1f} [{low:+.1f}, {high:+.1f}] |"
        print(row)
    first = reports[0]
    print(
        f"\n{first.family}, {first.num_tasks} tasks ({first.info.get('task_set', '?')}), "
        f"{first.episodes} episodes per step, seed {first.seed}"
        + (f"; oracle's mean return {target / args.oracle_fraction:.1f}" if target else "")
    )


if __name__ == "__main__":
    main()
