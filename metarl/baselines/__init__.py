"""Baselines: what a user would do without meta-learning, measured with the same protocol and
budget as a meta-learner, in the same report format (:class:`~metarl.AdaptationReport`).

- ``random-init``: a fresh policy (the meta-learner's own starting point) adapted with the
  meta-learner's inner procedure and budget: what meta-training added.
- ``pretrained``: PPO (Stable-Baselines3) trained on the whole task distribution, a new task
  every episode, then adapted with the same inner procedure and budget (the MAML paper's
  "pretrained" comparison).
- ``pretrained-finetune``: the same pretrained policy fine-tuned on each held-out task with
  SB3 PPO (the ``ppo-scratch`` procedure and budget, from the pretrained actor; a fresh
  critic): what a user who pre-trains with PPO would do next, with no inner procedure made
  for a meta-learned policy.
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

import numpy as np
import torch

from metarl import seeds
from metarl.algos import learner_class
from metarl.algos.base import LearnerConfig, MetaLearner
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file
from metarl.baselines.envs import TaskEnv
from metarl.baselines.ppo import (
    oracle_returns,
    ppo_from_scratch_returns,
    pretrain_ppo,
    tasks_progress,
)
from metarl.checkpoint import load_checkpoint, save_checkpoint, section
from metarl.evaluation.evaluate import run_evaluation
from metarl.evaluation.report import AdaptationReport
from metarl.evaluation.tasks import resolve_tasks
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy
from metarl.runs import resolve_checkpoint
from metarl.sb3_bridge import params_from_sb3
from metarl.task import Task

#: The baselines :func:`run_baseline` knows, with their legend names.
BASELINES = {
    "random-init": "random init",
    "pretrained": "PPO pretrained",
    "pretrained-finetune": "PPO pretrained, fine-tuned with PPO",
    "ppo-scratch": "PPO from scratch",
    "oracle": "oracle (PPO sees the task)",
}
#: The baselines that train a PPO policy on the whole distribution first (or load one).
POLICY_BASELINES = ("pretrained", "pretrained-finetune", "oracle")

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
    values.pop("init_policy", None)  # a warm-started run's random init is still random
    return learner_from_config(algorithm, values, source)


def learner_from_config(algorithm: str, values: Mapping[str, Any], source: str) -> MetaLearner:
    """A fresh learner of ``algorithm`` with config ``values`` (checked; errors name
    ``source``)."""
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
    policy: str | Path | None = None,
    save_policy: str | Path | None = None,
) -> AdaptationReport:
    """Measure baseline ``name`` (one of :data:`BASELINES`) on ``tasks`` as
    :func:`metarl.evaluate` measures a meta-learner: returns after 0..``steps`` adaptation
    steps of ``episodes`` episodes. ``learner`` (from :func:`baseline_learner`) gives the
    family, the policy architecture and the inner procedure; ``timesteps`` is PPO's training
    budget for ``pretrained``, ``pretrained-finetune`` and ``oracle``, and ``ppo_kwargs``
    change SB3's PPO defaults for their pre-training; ``label`` is the legend text (default:
    the baseline's name and inner procedure). ``pretrained`` replaces ``learner``'s
    parameters with PPO's.

    ``pretrained``, ``pretrained-finetune`` and ``oracle`` train a policy: ``save_policy``
    writes it as a checkpoint (safetensors + JSON; ``metarl evaluate`` re-evaluates it, on
    any tasks), and ``policy`` takes one written before instead of training again (e.g. to
    adapt the same pre-trained policy with another learner's inner procedure, or to
    fine-tune it with PPO: ``pretrained-finetune`` takes a ``pretrained`` policy).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; available: {list(BASELINES)}")
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an int >= 1, got {timesteps!r}")
    trains = name in POLICY_BASELINES
    if not trains and (policy is not None or save_policy is not None):
        raise ValueError(f"{name} trains no policy to save or load; leave out policy/save_policy")
    info: dict[str, Any] = {"baseline": name}
    params = None
    # The policy trained (and saved, and loaded): pretrained-finetune's is a pretrained one.
    policy_kind = "oracle" if name == "oracle" else "pretrained"
    if trains:
        info.update(ppo_timesteps=timesteps, ppo_kwargs=dict(ppo_kwargs or {}), ppo_seed=seed)
        if policy is not None:
            params, saved = load_baseline_policy(policy, policy_kind, learner.family.id)
            info.update(saved, policy=str(policy))
        else:
            # A long pre-training saves its state beside the policy, and resumes from it.
            progress = None if save_policy is None else _progress_path(save_policy)
            model = pretrain_ppo(
                learner.family,
                learner.config,
                timesteps,
                seed,
                name == "oracle",
                ppo_kwargs,
                progress,
            )
            params = params_from_sb3(model)
    if name in ("pretrained", "pretrained-finetune"):
        learner.policy.load_state_dict(params)
        learner.env_steps = int(info["ppo_timesteps"])
        if save_policy is not None:
            learner.save(save_policy, baseline={**_policy_info(info), "baseline": policy_kind})
            _progress_path(save_policy).unlink(missing_ok=True)  # the policy is saved: done
    if name in ("random-init", "pretrained"):
        return evaluate_as_baseline(
            learner, name, tasks, steps, episodes, seed, num_tasks, label, info
        )

    family = learner.family
    task_list, task_set = resolve_tasks(family, tasks, num_tasks, seed)
    if name == "oracle":
        oracle = oracle_policy(family, learner.config)
        oracle.load_state_dict(params)
        if save_policy is not None:
            save_checkpoint(
                save_policy,
                {f"policy/{k}": v for k, v in oracle.state_dict().items()},
                {
                    "algorithm": learner.algorithm,
                    "config": config_to_dict(learner.config),
                    "iteration": 0,
                    "env_steps": int(info["ppo_timesteps"]),
                    "baseline": _policy_info(info),
                },
            )
            _progress_path(save_policy).unlink(missing_ok=True)  # the policy is saved: done
        returns = oracle_returns(oracle, oracle.params(), family, task_list, steps, episodes, seed)
    else:  # ppo-scratch, pretrained-finetune: PPO on each task, from scratch or pretrained
        initial = params if name == "pretrained-finetune" else None
        description = "PPO from scratch" if initial is None else "PPO fine-tuning"
        returns = [
            ppo_from_scratch_returns(
                family,
                learner.config,
                task,
                steps,
                episodes,
                seeds.finetune_task(seed, i),
                initial_actor=initial,
            )
            for i, task in enumerate(tasks_progress(task_list, description))
        ]
    info.update(task_set=task_set, config=config_to_dict(learner.config))
    return AdaptationReport(
        family=family.id,
        learner=name,
        tasks=[t.to_dict() for t in task_list],
        returns=returns,
        episodes=episodes,
        seed=seed,
        label=label or BASELINES[name],
        info=info,
    )


def evaluate_as_baseline(
    learner: MetaLearner,
    name: str,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]],
    steps: int,
    episodes: int,
    seed: int,
    num_tasks: int,
    label: str,
    info: Mapping[str, Any],
) -> AdaptationReport:
    """``random-init`` or ``pretrained``: ``learner``'s parameters adapted with its own inner
    procedure, as :func:`metarl.evaluate` does, reported under the baseline's name."""
    label = label or f"{BASELINES[name]} ({type(learner).display_name} adaptation)"
    info = {**info, "inner_procedure": learner.algorithm}
    report, _, _ = run_evaluation(
        learner, tasks, steps, episodes, seed, num_tasks, label, name, info
    )
    return report


def _progress_path(save_policy: str | Path) -> Path:
    """Where a pre-training that will be saved at ``save_policy`` keeps its state while it
    runs (``pretrained.safetensors`` -> ``pretrained.training.safetensors``)."""
    path = Path(save_policy)
    return path.with_name(f"{path.stem}.training{path.suffix or '.safetensors'}")


def _policy_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """What a saved baseline policy records of how it was trained."""
    keys = ("baseline", "ppo_timesteps", "ppo_kwargs", "ppo_seed")
    return {k: info[k] for k in keys if k in info}


def oracle_policy(family: TaskFamily, config: LearnerConfig) -> GaussianMLPPolicy:
    """An untrained actor of the oracle's shape: the family's observation with its task
    features appended, ``config``'s architecture."""
    env = TaskEnv(family, observe_task=True)
    try:
        obs_dim = int(np.prod(env.observation_space.shape))
        act_dim = int(env.action_space.shape[0])
    finally:
        env.close()
    return GaussianMLPPolicy(
        obs_dim, act_dim, config.hidden_sizes, config.activation, config.init_std
    )


def load_baseline_policy(
    path: str | Path, name: str, family_id: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(actor parameters, training record)`` of a policy that ``run_baseline(name, ...,
    save_policy=path)`` wrote for ``family_id``."""
    tensors, meta = load_checkpoint(path)
    saved = meta.get("baseline")
    if not isinstance(saved, dict) or saved.get("baseline") != name:
        found = saved.get("baseline") if isinstance(saved, dict) else "no baseline"
        raise ValueError(
            f"{path} holds no {name} policy (it holds {found!r}); give a file that "
            f"'metarl baseline {name} --save-policy FILE' wrote"
        )
    family = meta.get("config", {}).get("family")
    if family != family_id:
        raise ValueError(f"{path} holds a {name} policy of {family}, not of {family_id}")
    params = section(tensors, "policy")
    return params, saved


def is_baseline_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a policy that ``run_baseline`` saved (rather than a learner's)."""
    _, meta = load_checkpoint(path)
    return isinstance(meta.get("baseline"), dict)


def evaluate_baseline_checkpoint(
    path: str | Path,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]] = "test",
    steps: int = 3,
    episodes: int = 20,
    seed: int = 0,
    num_tasks: int = 40,
    label: str = "",
) -> AdaptationReport:
    """Re-evaluate a saved ``pretrained`` or ``oracle`` policy (``run_baseline(...,
    save_policy=path)``) on ``tasks``: the same report ``run_baseline`` gave, for the same
    tasks and seed. ``metarl evaluate FILE`` calls this for such a file."""
    _, meta = load_checkpoint(path)
    saved = meta.get("baseline")
    if not isinstance(saved, dict) or saved.get("baseline") not in ("pretrained", "oracle"):
        raise ValueError(f"{path} holds no saved pretrained or oracle policy")
    name = saved["baseline"]
    learner = learner_from_config(str(meta.get("algorithm")), meta["config"], str(path))
    try:
        return run_baseline(
            name,
            learner,
            tasks,
            steps,
            episodes,
            seed,
            num_tasks,
            timesteps=int(saved["ppo_timesteps"]),
            label=label,
            policy=path,
        )
    finally:
        learner.close()


__all__ = [
    "BASELINES",
    "DEFAULT_TIMESTEPS",
    "POLICY_BASELINES",
    "baseline_learner",
    "evaluate_baseline_checkpoint",
    "is_baseline_checkpoint",
    "load_baseline_policy",
    "run_baseline",
    "run_env_steps",
]
