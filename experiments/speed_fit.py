"""How much of a velocity-family report is explained by one running speed: per adaptation
step, the least-squares fit of each task's mean return to ``a - b * |g - v|`` over the tasks'
target velocities g, with v searched on a grid. A policy that runs at speed v whatever the
task has b = the episode length (the reward is -|speed - g| per step); a policy that tracks
the target has a smaller b.

    python experiments/speed_fit.py experiments/results/rl2/halfcheetah_vel_seed0/eval/*.json
"""

from __future__ import annotations

import argparse

import numpy as np

from metarl.evaluation import AdaptationReport


def speed_fit(
    targets: np.ndarray, returns: np.ndarray, speeds: np.ndarray
) -> tuple[float, float, float]:
    """The best speed v of ``speeds``, the slope b and the fit's R² of ``returns`` against
    ``a - b * |targets - v|``."""
    best = (-np.inf, 0.0, 0.0)
    spread = ((returns - returns.mean()) ** 2).sum()
    for v in speeds:
        design = np.c_[np.ones_like(targets), np.abs(targets - v)]
        coef, *_ = np.linalg.lstsq(design, returns, rcond=None)
        r2 = 1.0 - ((returns - design @ coef) ** 2).sum() / spread
        if r2 > best[0]:
            best = (r2, float(v), float(-coef[1]))
    r2, v, slope = best
    return v, slope, float(r2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="report files of a velocity family")
    parser.add_argument("--param", default="velocity", help="the target's task parameter")
    args = parser.parse_args()
    print("| report | step | mean return | speed v | slope b | R² |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in args.reports:
        report = AdaptationReport.load(path)
        targets = np.array([float(t[args.param]) for t in report.tasks])
        speeds = np.linspace(targets.min(), targets.max(), 41)
        for k in report.steps:
            returns = np.array([np.nanmean(np.array(r[k], dtype=float)) for r in report.returns])
            v, slope, r2 = speed_fit(targets, returns, speeds)
            cells = f"{returns.mean():.1f} | {v:.2f} | {slope:.1f} | {r2:.2f}"
            print(f"| {report.label} | {k} | {cells} |")


if __name__ == "__main__":
    main()
