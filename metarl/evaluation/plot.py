"""Plots: adaptation curves (the mean return after each adaptation step with its 95%
confidence band, one line per report, one panel per task family: :func:`plot_reports`), and
training curves (the returns a run logs per iteration in ``progress.csv``, against env steps
or iterations: :func:`plot_progress`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metarl.evaluation.report import AdaptationReport


def plot_reports(
    reports: Sequence[AdaptationReport], path: str | Path, title: str | None = None
) -> Path:
    """Draw ``reports`` as adaptation curves into ``path`` (any format Matplotlib writes,
    by its suffix: ``.png``, ``.pdf``, ``.svg``); returns the path. Each panel's title names
    its family and the task set the reports measured (``test``, ``ood``, a task file), unless
    ``title`` is given."""
    if not reports:
        raise ValueError("give at least one report to plot")
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r.family for r in reports))
    fig, axes = plt.subplots(
        1, len(families), figsize=(8.5 * len(families), 4.2), squeeze=False, layout="constrained"
    )
    for ax, family in zip(axes[0], families, strict=True):
        # Best final return first: the legend then reads top to bottom like the curves.
        group = sorted((r for r in reports if r.family == family), key=_final_return)
        for report, label in zip(group, _distinct_labels(group), strict=True):
            steps = report.steps
            low, high = zip(*report.ci95, strict=True)
            (line,) = ax.plot(steps, report.mean_return, marker="o", label=label)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        tasks = sorted({r.num_tasks for r in group})
        sets = list(dict.fromkeys(str(r.info.get("task_set", "?")) for r in group))
        ax.set_title(f"{family}, {_join(sets)} tasks" if title is None else title)
        ax.set_xlabel(_steps_label(group))
        ax.set_ylabel(f"mean return ({_join(tasks)} tasks, 95% CI)")
        ax.set_xticks(range(max(len(r.steps) for r in group)))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)


def _steps_label(group: Sequence[AdaptationReport]) -> str:
    """The x axis: how many episodes each step learns from, with the reports whose steps
    are single episodes of a trial (RL²) named apart."""
    by_memory = [r.label for r in group if r.episodes_per_step != r.episodes]
    episodes = sorted({r.episodes for r in group if r.episodes_per_step == r.episodes})
    if not by_memory:
        return f"adaptation steps ({_join(episodes)} episodes each)"
    if len(by_memory) == len(group):
        return "adaptation steps (one episode of a trial each)"
    return (
        f"adaptation steps ({_join(episodes)} episodes each; "
        f"{', '.join(dict.fromkeys(by_memory))}: one episode of a trial)"
    )


def _distinct_labels(reports: Sequence[AdaptationReport]) -> list[str]:
    """Each report's label, with what tells apart reports that share one (two seeds of a
    run, say): the training seed, else the evaluation seed and step sizes, else a number."""
    labels = [r.label for r in reports]
    for label in set(labels):
        same = [i for i, other in enumerate(labels) if other == label]
        if len(same) < 2:
            continue
        for describe in (_training_seed, _evaluation, lambda r: None):
            extra = [describe(reports[i]) for i in same]
            if None not in extra and len(set(extra)) == len(extra):
                break
        else:
            extra = [f"#{n + 1}" for n in range(len(same))]
        for i, text in zip(same, extra, strict=True):
            labels[i] = f"{label}, {text}"
    return labels


def _training_seed(report: AdaptationReport) -> str | None:
    seed = report.info.get("config", {}).get("seed") if isinstance(report.info, dict) else None
    return None if seed is None else f"seed {seed}"


def _evaluation(report: AdaptationReport) -> str:
    sizes = report.info.get("inner_step_sizes") if isinstance(report.info, dict) else None
    text = f"evaluation seed {report.seed}"
    return text if not sizes else f"{text}, step sizes {_join(sizes)}"


def _final_return(report: AdaptationReport) -> float:
    final = report.mean_return[-1]
    return -final if final == final else math.inf  # NaN (no stable episode) last


def _join(values: Sequence[object]) -> str:
    return "/".join(str(v) for v in values)


def _is_return_column(name: str) -> bool:
    return name.startswith(("return_", "heldout/return_"))


def plot_progress(
    runs: Sequence[str | Path], path: str | Path, x: str = "env_steps", title: str | None = None
) -> Path:
    """Draw the training curves of ``runs`` (run directories, or their ``progress.csv``)
    into ``path``: every return the runs log per iteration (``return_before``,
    ``return_after``, Reptile's ``return_after_step_<k>``, a held-out evaluation's
    ``heldout/return_step_<k>``) against ``x`` (``env_steps`` or ``iteration``)."""
    import csv

    if not runs:
        raise ValueError("give at least one run directory (or progress.csv) to plot")
    if x not in ("env_steps", "iteration"):
        raise ValueError(f"x must be 'env_steps' or 'iteration', got {x!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
    for run in runs:
        csv_path = Path(run) / "progress.csv" if Path(run).is_dir() else Path(run)
        if not csv_path.is_file():
            raise FileNotFoundError(f"no progress.csv at {str(csv_path)!r}")
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or x not in rows[0]:
            raise ValueError(f"{csv_path} logs no {x!r} column (is it a run's progress.csv?)")
        name = csv_path.parent.name
        for column in [c for c in rows[0] if _is_return_column(c)]:
            points = [
                (float(r[x]), float(r[column])) for r in rows if r.get(column) not in ("", None)
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="." if len(points) < 50 else None, label=f"{name}: {column}")
    ax.set_xlabel("env steps" if x == "env_steps" else "iteration")
    ax.set_ylabel("mean return")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (its format by the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=120)
    except ValueError as err:  # an unknown suffix
        raise ValueError(f"cannot write a plot to {str(path)!r}: {err}") from None
    finally:
        plt.close(fig)
    return path
