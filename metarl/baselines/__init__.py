"""Baselines: what a user would do without meta-learning, measured with the same protocol and
budget as a meta-learner, in the same report format (:class:`~metarl.AdaptationReport`).

- ``random-init``: a fresh policy (the meta-learner's own starting point) adapted with the
  meta-learner's inner procedure and budget: what meta-training added.
- ``pretrained``: PPO (Stable-Baselines3) trained on the whole task distribution, a new task
  every episode, then adapted with the same inner procedure and budget (the MAML paper's
  "pretrained" comparison).
- ``ppo-scratch``: SB3 PPO learning each held-out task from scratch, with the same episode
  budget: ``steps + 1`` rollouts of ``episodes`` episodes, one PPO update after each.
- ``oracle``: PPO trained on the whole distribution with the task's parameters in its
  observation; it needs no adaptation (an upper reference; every step samples it again).

The meta-learner whose inner procedure, architecture and family a baseline uses comes from a
run (``like=RUN_DIR``: its config, and for ``random-init`` its exact initial parameters), a
config file, or the defaults of MAML-TRPO for a family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from metarl.algos import learner_class, resolve_checkpoint
from metarl.algos.base import MetaLearner
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file
from metarl.baselines.ppo import (
    oracle_returns,
    ppo_from_scratch_returns,
    pretrain_ppo,
    tasks_progress,
)
from metarl.checkpoint import load_checkpoint
from metarl.evaluation.evaluate import run_evaluation
from metarl.evaluation.report import DISPLAY_NAMES, AdaptationReport
from metarl.evaluation.tasks import resolve_tasks
from metarl.sb3_bridge import params_from_sb3
from metarl.task import Task

#: The baselines :func:`run_baseline` knows.
BASELINES = ("random-init", "pretrained", "ppo-scratch", "oracle")

#: Env steps of PPO (pre-)training for ``pretrained`` and ``oracle`` when no run gives the
#: budget (``metarl baseline --like RUN_DIR`` gives them the run's env steps).
DEFAULT_TIMESTEPS = 1_000_000


def baseline_learner(
    family: str | None = None,
    like: str | Path | None = None,
    config: str | Path | None = None,
    seed: int | None = None,
) -> MetaLearner:
    """A fresh (untrained) meta-learner giving a baseline its family, architecture and inner
    procedure: the config of the run ``like`` (a run directory or checkpoint), of the config
    file ``config``, or MAML-TRPO's defaults on ``family``. ``seed`` overrides the config's
    (the policy's initialisation)."""
    if sum(x is not None for x in (family, like, config)) != 1:
        raise ValueError(
            "give exactly one of family (MAML-TRPO's defaults on it), like (a run directory "
            "whose config to use) or config (a config file)"
        )
    if like is not None:
        _, meta = load_checkpoint(resolve_checkpoint(like)[0])
        algorithm, values = str(meta.get("algorithm")), dict(meta["config"])
        source = str(like)
    elif config is not None:
        algorithm, values = read_config_file(config)
        source = str(config)
    else:
        algorithm, values, source = "maml_trpo", {"family": family}, "defaults"
    if seed is not None:
        values["seed"] = seed
    cls = learner_class(algorithm)
    return cls(config_from_dict(cls.config_class, values, source))


def run_env_steps(like: str | Path) -> int:
    """The env steps meta-training sampled in the run ``like`` (a run directory: its latest
    checkpoint; or a checkpoint): the budget that makes a baseline's PPO training equal."""
    checkpoint, _ = resolve_checkpoint(like)
    _, meta = load_checkpoint(checkpoint)
    steps = meta.get("env_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"{checkpoint} records no env steps of training ({steps!r}); give the PPO budget "
            f"explicitly (--timesteps N)"
        )
    return steps


def run_baseline(
    name: str,
    learner: MetaLearner,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]] = "test",
    steps: int = 3,
    episodes: int = 20,
    seed: int = 0,
    num_tasks: int = 40,
    timesteps: int = DEFAULT_TIMESTEPS,
    ppo_kwargs: Mapping[str, Any] | None = None,
    label: str = "",
) -> AdaptationReport:
    """Measure baseline ``name`` (one of :data:`BASELINES`) on ``tasks`` as
    :func:`metarl.evaluate` measures a meta-learner: returns after 0..``steps`` adaptation
    steps of ``episodes`` episodes. ``learner`` (from :func:`baseline_learner`) gives the
    family, the policy architecture and the inner procedure; ``timesteps`` is PPO's training
    budget for ``pretrained`` and ``oracle``, and ``ppo_kwargs`` change SB3's PPO defaults
    for their pre-training; ``label`` is the legend text (default: the baseline's name and
    inner procedure). ``pretrained`` replaces ``learner``'s parameters with PPO's."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; available: {list(BASELINES)}")
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an int >= 1, got {timesteps!r}")
    info: dict[str, Any] = {"baseline": name}
    if name in ("pretrained", "oracle"):
        info.update(ppo_timesteps=timesteps, ppo_kwargs=dict(ppo_kwargs or {}))
    if name == "pretrained":
        model = pretrain_ppo(learner.family, learner.config, timesteps, seed, False, ppo_kwargs)
        learner.policy.load_state_dict(params_from_sb3(model))
    if name in ("random-init", "pretrained"):
        info["inner_procedure"] = learner.algorithm
        procedure = DISPLAY_NAMES.get(learner.algorithm, learner.algorithm)
        label = label or f"{DISPLAY_NAMES[name]} ({procedure} adaptation)"
        report, _, _ = run_evaluation(
            learner, tasks, steps, episodes, seed, num_tasks, label, name, info
        )
        return report

    family = learner.family
    task_list, task_set = resolve_tasks(family, tasks, num_tasks, seed)
    if name == "oracle":
        model = pretrain_ppo(family, learner.config, timesteps, seed, True, ppo_kwargs)
        returns = oracle_returns(model, family, task_list, steps, episodes, seed)
    else:  # ppo-scratch
        returns = [
            ppo_from_scratch_returns(family, learner.config, task, steps, episodes, seed + i)
            for i, task in enumerate(tasks_progress(task_list, "PPO from scratch"))
        ]
    info.update(task_set=task_set, config=config_to_dict(learner.config))
    return AdaptationReport(
        family=family.id,
        learner=name,
        tasks=[t.to_dict() for t in task_list],
        returns=returns,
        episodes=episodes,
        seed=seed,
        label=label,
        info=info,
    )


__all__ = ["BASELINES", "DEFAULT_TIMESTEPS", "baseline_learner", "run_baseline", "run_env_steps"]
