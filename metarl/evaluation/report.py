"""The adaptation report: every return of a held-out evaluation, and its summary per step.

An evaluation samples ``episodes`` episodes of each task with the parameters after ``k``
adaptation steps, for ``k = 0 .. K``. The report keeps every one of those returns (per task,
step and episode; ``None`` for an episode whose physics went unstable, which is masked out,
never counted as a return), and summarises each step across tasks: the mean return, the
standard deviation of the per-task mean returns, and a 95% Student-t confidence interval of the
mean over tasks (the task is the unit that is sampled from the distribution; a task's episodes
share its adapted policy, so they are not independent draws).

Reports save and load as JSON (the full record, with the summary for readers) and as CSV (one
row per episode, the header fields as ``#`` comment lines), both lossless. Baselines produce the
same report, so one plot or table can hold them all.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from metarl.atomic import atomic_path

FORMAT = "metarl-adaptation-report"
VERSION = 1

_HEADER_FIELDS = ("family", "learner", "label", "episodes", "seed", "info")


def _returns_of(value: Any, where: str) -> tuple[tuple[float | None, ...], ...]:
    """One task's returns, ``[step][episode]``, checked: numbers (finite) or None."""
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValueError(f"{where}: returns must be a non-empty list (one list per step)")
    steps = []
    for k, episodes in enumerate(value):
        if not isinstance(episodes, Sequence) or isinstance(episodes, str):
            raise ValueError(f"{where}, step {k}: expected a list of episode returns")
        row = []
        for r in episodes:
            if r is None:
                row.append(None)
                continue
            if isinstance(r, bool) or not isinstance(r, (int, float, np.floating, np.integer)):
                raise ValueError(f"{where}, step {k}: {r!r} is not a return (a number or null)")
            if not math.isfinite(float(r)):
                raise ValueError(f"{where}, step {k}: a return must be finite, got {r!r}")
            row.append(float(r))
        steps.append(tuple(row))
    return tuple(steps)


@dataclass(frozen=True)
class AdaptationReport:
    """Returns after 0..K adaptation steps on a set of tasks, for one learner or baseline.

    Attributes:
        family: the task family's id.
        learner: what was evaluated: ``maml_trpo``, ``reptile``, or a baseline's name
            (``random-init``, ``pretrained``, ``ppo-scratch``, ``oracle``).
        tasks: each task's parameters (``task.to_dict()``).
        returns: ``returns[i][k]`` is the list of episode returns of task ``i`` after ``k``
            adaptation steps (``None``: the episode's physics went unstable). Usually
            ``episodes`` per step; a baseline that collects by env steps may have more.
        episodes: episodes per adaptation step (the budget).
        seed: the evaluation's seed.
        label: the legend text (default: the learner's display name).
        info: anything else worth keeping: the task set, checkpoint, iteration, env steps,
            the learner's config, baseline settings.
    """

    family: str
    learner: str
    tasks: tuple[Mapping[str, Any], ...]
    returns: tuple[tuple[tuple[float | None, ...], ...], ...]
    episodes: int
    seed: int = 0
    label: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(dict(t) for t in self.tasks))
        if not self.tasks:
            raise ValueError("a report needs at least one task")
        if len(self.returns) != len(self.tasks):
            raise ValueError(
                f"returns has {len(self.returns)} rows for {len(self.tasks)} tasks; "
                f"give one list of per-step returns per task"
            )
        returns = tuple(_returns_of(r, f"task {i}") for i, r in enumerate(self.returns))
        lengths = {len(r) for r in returns}
        if len(lengths) != 1:
            raise ValueError(f"every task needs the same number of steps, got {sorted(lengths)}")
        object.__setattr__(self, "returns", returns)
        if isinstance(self.episodes, bool) or not isinstance(self.episodes, int):
            raise ValueError(f"episodes must be an int >= 1, got {self.episodes!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be an int >= 1, got {self.episodes!r}")
        if not self.label:
            object.__setattr__(self, "label", self.learner)
        object.__setattr__(self, "info", dict(self.info))

    # ------------------------------------------------------------------ summary
    @property
    def steps(self) -> list[int]:
        """The adaptation step indices, ``[0, 1, ..., K]``."""
        return list(range(len(self.returns[0])))

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def task_means(self) -> np.ndarray:
        """``[tasks, steps]``: each task's mean return over its stable episodes (NaN if none)."""
        out = np.full((self.num_tasks, len(self.steps)), np.nan)
        for i, per_step in enumerate(self.returns):
            for k, episodes in enumerate(per_step):
                valid = [r for r in episodes if r is not None]
                if valid:
                    out[i, k] = float(np.mean(valid))
        return out

    @property
    def mean_return(self) -> list[float]:
        """Per step: the mean over tasks of each task's mean return."""
        return [float(np.nanmean(col)) if _count(col) else math.nan for col in self.task_means().T]

    @property
    def std(self) -> list[float]:
        """Per step: the standard deviation (ddof 1) of the per-task mean returns."""
        return [
            float(np.nanstd(col, ddof=1)) if _count(col) > 1 else math.nan
            for col in self.task_means().T
        ]

    @property
    def ci95(self) -> list[tuple[float, float]]:
        """Per step: the 95% Student-t confidence interval ``(low, high)`` of the mean return
        over tasks (NaN with fewer than two tasks)."""
        return [_mean_and_ci(col[~np.isnan(col)])[1] for col in self.task_means().T]

    def gain(self, step: int, reference: int = 0) -> tuple[float, tuple[float, float]]:
        """``(mean, (low, high))``: how much adaptation changed the return from step
        ``reference`` to ``step``, paired per task (each task's mean at ``step`` minus its mean
        at ``reference``), with a 95% Student-t interval over tasks. Tasks differ far more from
        one another than adaptation changes any one of them, so this paired interval is the
        one that says whether adaptation helped; the per-step intervals overlap even when it
        clearly did."""
        means = self.task_means()
        diff = means[:, step] - means[:, reference]
        return _mean_and_ci(diff[~np.isnan(diff)])

    def paired_difference(
        self, other: AdaptationReport, step: int, reference: int | None = None
    ) -> tuple[float, tuple[float, float]]:
        """``(mean, (low, high))``: by how much this report beats ``other`` on the same tasks,
        paired per task, with a 95% Student-t interval over tasks. With ``reference`` None,
        the return at ``step`` (each task's mean here minus its mean in ``other``); with
        ``reference`` k, the gain from step k to ``step`` (this gain minus ``other``'s): did
        adaptation add more here than there? Both reports must hold the same tasks in the
        same order (evaluations of one task set)."""
        if self.tasks != other.tasks:
            raise ValueError(
                f"{self.label!r} and {other.label!r} were evaluated on different tasks; a paired "
                f"difference needs the same task set (and seed) for both"
            )
        here, there = self.task_means(), other.task_means()
        diff = here[:, step] - there[:, step]
        if reference is not None:
            diff -= here[:, reference] - there[:, reference]
        return _mean_and_ci(diff[~np.isnan(diff)])

    def where(self, **values: Any) -> AdaptationReport:
        """The report restricted to the tasks whose parameters equal ``values``
        (``report.where(direction=-1)``): a mean over tasks can hide that adaptation works
        for some kinds of task and not others."""
        if not values:
            raise ValueError("where() needs at least one parameter=value")
        unknown = sorted(set(values) - set(self.tasks[0]))
        if unknown:
            raise KeyError(
                f"the tasks have no parameter {unknown}; they have {sorted(self.tasks[0])}"
            )
        kept = [
            i
            for i, task in enumerate(self.tasks)
            if all(task.get(k) == v for k, v in values.items())
        ]
        if not kept:
            found = {k: sorted({str(t[k]) for t in self.tasks}) for k in values}
            raise ValueError(f"no task has {values}; the values present are {found}")
        return replace(
            self,
            tasks=tuple(self.tasks[i] for i in kept),
            returns=tuple(self.returns[i] for i in kept),
            info={**self.info, "where": dict(values)},
        )

    @property
    def unstable_episodes(self) -> int:
        """Episodes whose physics went unstable (left out of every mean)."""
        return sum(r is None for per_step in self.returns for eps in per_step for r in eps)

    @property
    def episodes_per_step(self) -> int:
        """The episodes of each task that one adaptation step learns from: ``episodes`` for
        a learner that adapts on each step's batch, 1 for one that adapts by its memory over
        the episodes of a trial (RL², whose step k is the k-th episode of ``episodes``
        trials; recorded as ``info["episodes_per_step"]``)."""
        return int(self.info.get("episodes_per_step", self.episodes))

    def summary(self) -> str:
        """A small table: step, mean return, 95% CI, std."""
        if self.episodes_per_step == self.episodes:
            budget = f"{self.episodes} episodes per adaptation step"
        else:
            budget = (
                f"{self.episodes} trials, step k their k-th episode "
                f"({self.episodes_per_step} episode per step)"
            )
        lines = [
            f"{self.label} on {self.family}: {self.num_tasks} tasks, {budget}",
            f"{'step':>4}  {'mean return':>12}  {'95% CI':>22}  {'std':>9}  "
            f"{'gain over step 0, paired (95% CI)':>36}",
        ]
        for k, mean, (lo, hi), std in zip(
            self.steps, self.mean_return, self.ci95, self.std, strict=True
        ):
            gain, (g_lo, g_hi) = self.gain(k)
            lines.append(
                f"{k:>4}  {mean:>12.2f}  [{lo:>9.2f}, {hi:>9.2f}]  {std:>9.2f}  "
                f"{gain:>10.2f} [{g_lo:>9.2f}, {g_hi:>9.2f}]"
            )
        if self.unstable_episodes:
            lines.append(f"({self.unstable_episodes} episodes with unstable physics left out)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document: header fields, the summary per step, and every return."""
        gains = [self.gain(k) for k in self.steps]
        return {
            "format": FORMAT,
            "version": VERSION,
            "family": self.family,
            "learner": self.learner,
            "label": self.label,
            "episodes": self.episodes,
            "seed": self.seed,
            "num_tasks": self.num_tasks,
            "steps": self.steps,
            "mean_return": [_json_number(v) for v in self.mean_return],
            "std": [_json_number(v) for v in self.std],
            "ci95": [[_json_number(lo), _json_number(hi)] for lo, hi in self.ci95],
            "gain": [_json_number(gain) for gain, _ in gains],
            "gain_ci95": [[_json_number(lo), _json_number(hi)] for _, (lo, hi) in gains],
            "info": self.info,
            "tasks": [
                {"task": dict(task), "returns": [list(eps) for eps in returns]}
                for task, returns in zip(self.tasks, self.returns, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "report") -> AdaptationReport:
        """Rebuild a report from :meth:`to_dict`'s document (the summary is recomputed)."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError(f"{source} is not a metarl adaptation report (no format {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ValueError(
                f"{source} is a version {data.get('version')} report; this metarl reads "
                f"version {VERSION}"
            )
        try:
            entries = data["tasks"]
            return cls(
                family=data["family"],
                learner=data["learner"],
                label=data.get("label", ""),
                episodes=data["episodes"],
                seed=data.get("seed", 0),
                info=data.get("info", {}),
                tasks=[entry["task"] for entry in entries],
                returns=[entry["returns"] for entry in entries],
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{source}: malformed report ({err!r} missing or wrong)") from None
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    # ------------------------------------------------------------------ CSV
    def csv_rows(self) -> list[list[Any]]:
        """One row per episode: task index, step, episode, return ('' if unstable), task."""
        rows: list[list[Any]] = [["task_index", "step", "episode", "return", "task"]]
        for i, (task, per_step) in enumerate(zip(self.tasks, self.returns, strict=True)):
            task_json = json.dumps(dict(task), sort_keys=True)
            for k, episodes in enumerate(per_step):
                for j, r in enumerate(episodes):
                    rows.append([i, k, j, "" if r is None else repr(r), task_json])
        return rows

    @classmethod
    def from_csv_text(cls, text: str, source: str = "report") -> AdaptationReport:
        """Rebuild a report from :meth:`save`'s CSV."""
        header_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
        try:
            header = json.loads(header_lines[1]) if len(header_lines) > 1 else None
        except json.JSONDecodeError:
            header = None
        if not header_lines or header_lines[0] != f"{FORMAT} v{VERSION}" or header is None:
            raise ValueError(
                f"{source} is not a metarl adaptation report CSV (expected its first lines to "
                f"be '# {FORMAT} v{VERSION}' and a JSON header)"
            )
        body = [line for line in text.splitlines() if line and not line.startswith("#")]
        tasks: dict[int, Any] = {}
        returns: dict[int, dict[int, list[float | None]]] = {}
        try:
            for row in csv.DictReader(body):
                i, k = int(row["task_index"]), int(row["step"])
                tasks[i] = json.loads(row["task"])
                value = row["return"]
                returns.setdefault(i, {}).setdefault(k, []).append(
                    None if value == "" else float(value)
                )
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{source}: malformed report row ({err})") from None
        order = sorted(tasks)
        try:
            return cls(
                **{k: header[k] for k in _HEADER_FIELDS if k in header},
                tasks=[tasks[i] for i in order],
                returns=[[returns[i][k] for k in sorted(returns[i])] for i in order],
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the report as ``.json`` or ``.csv`` (by the suffix), atomically."""
        path = Path(path)
        suffix = _suffix(path)
        if suffix == ".json":
            text = json.dumps(self.to_dict(), indent=1)
        else:
            header = {k: getattr(self, k) for k in _HEADER_FIELDS}
            lines = [f"# {FORMAT} v{VERSION}", f"# {json.dumps(header, sort_keys=True)}"]
            body = _csv_text(self.csv_rows())
            text = "\n".join(lines) + "\n" + body
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> AdaptationReport:
        """Read a report written by :meth:`save` (``.json`` or ``.csv``)."""
        path = Path(path)
        suffix = _suffix(path)
        if not path.is_file():
            raise FileNotFoundError(f"no report at {str(path)!r}")
        text = path.read_text()
        if suffix == ".csv":
            return cls.from_csv_text(text, str(path))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data, str(path))


def _mean_and_ci(values: np.ndarray) -> tuple[float, tuple[float, float]]:
    """The mean of ``values`` and its 95% Student-t interval (NaN where undefined)."""
    if values.size == 0:
        return math.nan, (math.nan, math.nan)
    mean = float(values.mean())
    if values.size < 2:
        return mean, (math.nan, math.nan)
    half = float(stats.t.ppf(0.975, values.size - 1)) * float(values.std(ddof=1))
    half /= math.sqrt(values.size)
    return mean, (mean - half, mean + half)


def _count(column: np.ndarray) -> int:
    return int(np.sum(~np.isnan(column)))


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ValueError(f"a report is saved as .json or .csv, got {str(path)!r}")
    return suffix


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
