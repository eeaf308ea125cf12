"""Print a training run's returns as a Markdown table: the mean of each logged return over the
last ``--window`` iterations of every ``--every`` iterations (as experiments/RESULTS.md
quotes them), with the env steps and median seconds per iteration.

    python experiments/progress_table.py runs/hcdir_reptile --every 50 --window 10
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

#: Columns shown, in this order, when the run logged them.
RETURN_COLUMNS = (
    "return_before",
    "return_after_step_1",
    "return_after_step_2",
    "return_after_step_3",
    "return_after",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (its progress.csv)")
    parser.add_argument("--every", type=int, default=50, help="block size in iterations")
    parser.add_argument("--window", type=int, default=10, help="iterations averaged per block")
    args = parser.parse_args()
    with open(args.run_dir / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in RETURN_COLUMNS if c in rows[0]]
    print("| iterations | env steps | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for end in range(args.every, len(rows) + 1, args.every):
        block = rows[end - args.window : end]
        means = [statistics.fmean(float(r[c]) for r in block) for c in columns]
        steps = int(block[-1]["env_steps"])
        cells = " | ".join(f"{m:.1f}" for m in means)
        print(f"| {end - args.window + 1}-{end} | {steps / 1e6:.0f}M | {cells} |")
    seconds = statistics.median(float(r["seconds"]) for r in rows)
    print(
        f"\n{len(rows)} iterations, {int(rows[-1]['env_steps']) / 1e6:.1f}M env steps, "
        f"median {seconds:.1f} s per iteration"
    )


if __name__ == "__main__":
    main()
