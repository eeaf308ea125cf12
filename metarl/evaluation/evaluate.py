"""Held-out evaluation of anything adaptable (a meta-learner, a baseline): the MAML paper's
protocol.

For each task: sample ``episodes`` episodes with the starting parameters (step 0), take one
adaptation step on them with the adaptable's own procedure (a meta-learner's inner
procedure, PPO's update for the PPO baselines, none for the oracle), sample ``episodes``
more with the adapted parameters (step 1), and so on up to ``steps``. Every task is adapted
from the starting parameters independently (all of them at once, in one batch); nothing is
learned across tasks. The sampling of step ``k`` is seeded from ``(seed, k)`` alone
(:func:`metarl.seeds.evaluation_step`), so an evaluation is repeatable, independent of what
was sampled before, and draws the same env resets for every adaptable it measures.

Evaluation knows the :class:`~metarl.adaptation.Adaptable` protocol, not the learners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from metarl.adaptation import Adaptable, AdaptationResult, adapt_and_sample
from metarl.evaluation.report import AdaptationReport
from metarl.evaluation.tasks import TASK_SETS, resolve_tasks
from metarl.sampling import EpisodeBatch
from metarl.task import Task


def task_set_name(tasks: Any) -> str:
    """A short name for ``tasks`` in file names: ``test``, ``ood``, ``train``, ``tasks-<file
    stem>`` for a task file, ``tasks`` for a list."""
    if isinstance(tasks, (str, Path)):
        return str(tasks) if str(tasks) in TASK_SETS else f"tasks-{Path(tasks).stem}"
    return "tasks"


#: The libraries whose versions a report records: the same checkpoint and seeds give
#: slightly different episodes on another MuJoCo (or NumPy, torch) version, and after an
#: adaptation step different batches, so a figure is reproducible for its versions.
RECORDED_LIBRARIES = ("metarl", "mujoco", "gymnasium", "numpy", "torch", "stable_baselines3")


def library_versions() -> dict[str, str]:
    """The installed versions of :data:`RECORDED_LIBRARIES` (``"?"`` if one is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in RECORDED_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            found[name] = "?"
    return found


def episode_returns(batch: EpisodeBatch) -> list[list[float | None]]:
    """``[task][episode]`` returns of a batch, ``None`` for an episode with unstable physics."""
    returns = batch.returns().tolist()
    unstable = batch.sim_unstable.tolist()
    return [
        [None if bad else float(r) for r, bad in zip(row, flags, strict=True)]
        for row, flags in zip(returns, unstable, strict=True)
    ]


def run_evaluation(
    adaptable: Adaptable,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]] = "test",
    steps: int = 3,
    episodes: int = 20,
    seed: int = 0,
    num_tasks: int = 40,
    label: str = "",
    name: str | None = None,
    info: Mapping[str, Any] | None = None,
    step_sizes: Sequence[float] | None = None,
) -> tuple[AdaptationReport, list[Task], AdaptationResult]:
    """:func:`evaluate`, also returning the tasks and the adaptation itself (its batches and
    adapted parameters, e.g. to film them). ``name`` and ``info`` replace and extend what
    ``adaptable.describe()`` gives the report (a baseline reported under its own name)."""
    for option, value, low in (("steps", steps, 0), ("episodes", episodes, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{option} must be an int >= {low}, got {value!r}")
    task_list, task_set = resolve_tasks(adaptable.family, tasks, num_tasks, seed)
    result = adapt_and_sample(
        adaptable, task_list, episodes, steps, seed=seed, step_sizes=step_sizes
    )
    per_step = [episode_returns(batch) for batch in result.batches]  # [step][task][episode]
    returns = [[per_step[k][i] for k in range(steps + 1)] for i in range(len(task_list))]
    description = adaptable.describe()
    report = AdaptationReport(
        family=adaptable.family.id,
        learner=name or description.name,
        tasks=[t.to_dict() for t in task_list],
        returns=returns,
        episodes=episodes,
        seed=seed,
        label=label or description.label,
        info={
            "task_set": task_set,
            **description.info,
            **(info or {}),
            **({"inner_step_sizes": list(map(float, step_sizes))} if step_sizes else {}),
            "versions": library_versions(),
        },
    )
    return report, task_list, result


def evaluate(
    adaptable: Adaptable,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]] = "test",
    steps: int = 3,
    episodes: int = 20,
    seed: int = 0,
    num_tasks: int = 40,
    label: str = "",
    step_sizes: Sequence[float] | None = None,
) -> AdaptationReport:
    """Returns after 0..``steps`` adaptation steps of ``episodes`` episodes each, per task.

    Args:
        adaptable: a meta-learner (``metarl.load(run_dir)``, or any trained learner), or
            anything else with the :class:`~metarl.adaptation.Adaptable` protocol (the
            baselines of :mod:`metarl.baselines`).
        tasks: ``"test"`` (the family's fixed held-out set), ``"ood"`` (its out-of-distribution
            held-out set), ``"train"`` (fresh draws from the training distribution), a JSON file
            of task dicts, or a list of tasks or task dicts.
        steps: adaptation steps (the report has ``steps + 1`` points, step 0 unadapted).
        episodes: episodes sampled per task at each step; a step adapts on them.
        seed: the evaluation's seed (sampling, and the ``"train"`` draws).
        num_tasks: how many tasks of a named set (the MAML paper evaluates on 40).
        label: the legend text (default: ``adaptable.describe().label``, for a learner its
            algorithm's name and the iteration).
        step_sizes: MAML-TRPO only: the inner step size of each adaptation step (the last
            repeating) instead of the ``inner_lr`` it trained with, e.g. ``[0.5, 0.25]`` as the
            MAML authors evaluated 2D navigation. Recorded in the report's info.

    Returns:
        An :class:`AdaptationReport`: every return, and per step the mean, std and 95% CI.
    """
    report, _, _ = run_evaluation(
        adaptable, tasks, steps, episodes, seed, num_tasks, label, step_sizes=step_sizes
    )
    return report
