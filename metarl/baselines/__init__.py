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
  budget: each adaptation step is one PPO update (SB3's defaults, one minibatch per
  episode) on the ``episodes`` episodes just sampled.
- ``oracle``: PPO trained on the whole distribution with the task's parameters in its
  observation; it needs no adaptation (an upper reference; every step samples it again).

The meta-learner whose inner procedure, architecture and family a baseline uses comes from a
run (``like=RUN_DIR``: its config, and for ``random-init`` its exact initial parameters), a
config file, or the defaults of MAML-TRPO for a family (:func:`compared_learner`).

Every baseline is an :class:`~metarl.adaptation.Adaptable` (a learner, or one of
:mod:`metarl.baselines.adaptables`), measured by :func:`metarl.evaluate`'s loop: its
episodes are drawn by the same sampler with the same seeds as a meta-learner's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from metarl.adaptation import Adaptable, Description
from metarl.algos import learner_class
from metarl.algos.base import LearnerConfig, MetaLearner
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file
from metarl.baselines.adaptables import OracleBaseline, PPOBaseline, oracle_policy
from metarl.baselines.ppo import pretrain_ppo
from metarl.checkpoint import load_checkpoint, save_checkpoint, section
from metarl.evaluation.evaluate import run_evaluation
from metarl.evaluation.report import AdaptationReport
from metarl.registry import make_family
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


@dataclass(frozen=True)
class ComparedLearner:
    """The meta-learner a baseline is compared with: its algorithm and config give the
    baseline its family, policy architecture, sampler backend and (for ``random-init`` and
    ``pretrained``) inner procedure. ``source`` says where the config came from (errors name
    it)."""

    algorithm: str
    config: LearnerConfig
    source: str = "defaults"

    def learner(self) -> MetaLearner:
        """A fresh (untrained) learner of this config: its policy is the run's own starting
        point (the same seed, the same initialisation)."""
        return learner_class(self.algorithm)(self.config)


def compared_learner(
    family: str | None = None,
    like: str | Path | None = None,
    config: str | Path | None = None,
    seed: int | None = None,
) -> ComparedLearner:
    """The meta-learner a baseline is compared with: the config of the run ``like`` (a run
    directory or checkpoint), of the config file ``config``, or MAML-TRPO's defaults on
    ``family``. ``seed`` overrides the config's (the policy's initialisation)."""
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
    return ComparedLearner(algorithm, _config(algorithm, values, source), source)


def _config(algorithm: str, values: Mapping[str, Any], source: str) -> LearnerConfig:
    """``algorithm``'s config of ``values`` (checked; errors name ``source``)."""
    return config_from_dict(learner_class(algorithm).config_class, values, source)


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


def check_baseline_applies(name: str, compared: ComparedLearner) -> None:
    """A ``ValueError`` if baseline ``name`` has no meaning beside ``compared``'s learner:
    ``pretrained`` adapts a feed-forward policy with the learner's inner procedure, which a
    learner adapting in its hidden state (RL²) does not have."""
    if name == "pretrained" and not learner_class(compared.algorithm).adapts_parameters:
        raise ValueError(
            f"the pretrained baseline adapts a PPO-pretrained feed-forward policy with the "
            f"compared learner's inner procedure, and {compared.algorithm} adapts a recurrent "
            f"policy by its hidden state: there is no such baseline for it; measure "
            f"pretrained-finetune, ppo-scratch or random-init"
        )


def run_baseline(
    name: str,
    compared: ComparedLearner,
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
    """Measure baseline ``name`` (one of :data:`BASELINES`) on ``tasks`` with
    :func:`metarl.evaluate`'s protocol and loop: returns after 0..``steps`` adaptation steps
    of ``episodes`` episodes, sampled with the same seeds as a meta-learner's evaluation.
    ``compared`` (from :func:`compared_learner`) gives the family, the policy architecture,
    the sampler and the inner procedure; ``timesteps`` is PPO's training budget for
    ``pretrained``, ``pretrained-finetune`` and ``oracle``, and ``ppo_kwargs`` change SB3's
    PPO defaults for their pre-training; ``label`` is the legend text (default: the
    baseline's name and inner procedure).

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
    check_baseline_applies(name, compared)
    trains = name in POLICY_BASELINES
    if not trains and (policy is not None or save_policy is not None):
        raise ValueError(f"{name} trains no policy to save or load; leave out policy/save_policy")
    config = compared.config
    info: dict[str, Any] = {"baseline": name}
    params: dict[str, torch.Tensor] = {}
    # The policy trained (and saved, and loaded): pretrained-finetune's is a pretrained one.
    policy_kind = "oracle" if name == "oracle" else "pretrained"
    if trains:
        info.update(ppo_timesteps=timesteps, ppo_kwargs=dict(ppo_kwargs or {}), ppo_seed=seed)
        if policy is not None:
            params, saved = load_baseline_policy(policy, policy_kind, config.family)
            info.update(saved, policy=str(policy))
        else:
            # A long pre-training saves its state beside the policy, and resumes from it.
            progress = None if save_policy is None else _progress_path(save_policy)
            model = pretrain_ppo(
                make_family(config.family),
                config,
                timesteps,
                seed,
                name == "oracle",
                ppo_kwargs,
                progress,
            )
            params = params_from_sb3(model)
    if save_policy is not None:
        _save_policy(policy_kind, save_policy, compared, params, _policy_info(info))
    adaptable, description = _adaptable(name, compared, params, info, label)
    try:
        report, _, _ = run_evaluation(
            adaptable, tasks, steps, episodes, seed, num_tasks,
            description.label, description.name, description.info,
        )  # fmt: skip
    finally:
        adaptable.close()
    return report


def _adaptable(
    name: str,
    compared: ComparedLearner,
    params: dict[str, torch.Tensor],
    info: dict[str, Any],
    label: str,
) -> tuple[Adaptable, Description]:
    """Baseline ``name`` as an adaptable, and how its report names and describes it."""
    config = compared.config
    if name in ("random-init", "pretrained"):  # the learner's own inner procedure
        learner = compared.learner()
        if name == "pretrained":
            learner.policy.load_state_dict(params)
            learner.env_steps = int(info["ppo_timesteps"])
        details = {**learner.describe().info, **info, "inner_procedure": learner.algorithm}
        label = label or f"{BASELINES[name]} ({type(learner).display_name} adaptation)"
        return learner, Description(name, label, details)
    family = make_family(config.family)
    details = {**info, "config": config_to_dict(config)}
    description = Description(name, label or BASELINES[name], details)
    if name == "oracle":
        return OracleBaseline(family, config, description, params), description
    details["ppo_update"] = {"batch_size": family.horizon}  # one minibatch per episode
    initial = params if name == "pretrained-finetune" else None
    return PPOBaseline(family, config, description, initial_actor=initial), description


def _save_policy(
    kind: str,
    path: str | Path,
    compared: ComparedLearner,
    params: Mapping[str, torch.Tensor],
    record: dict[str, Any],
) -> None:
    """Write the policy a baseline trained (``kind``: ``pretrained`` or ``oracle``) as a
    checkpoint ``metarl evaluate`` re-evaluates, and remove the state its training kept
    while it ran."""
    record = {**record, "baseline": kind}
    if kind == "pretrained":  # a learner of the compared config, holding PPO's actor
        with compared.learner() as learner:
            learner.policy.load_state_dict(params)
            learner.env_steps = int(record["ppo_timesteps"])
            learner.save(path, baseline=record)
    else:  # the oracle: its actor, of the observation with the task's features appended
        save_checkpoint(
            path,
            {f"policy/{k}": v for k, v in params.items()},
            {
                "algorithm": compared.algorithm,
                "config": config_to_dict(compared.config),
                "iteration": 0,
                "env_steps": int(record["ppo_timesteps"]),
                "baseline": record,
            },
        )
    _progress_path(path).unlink(missing_ok=True)  # the policy is saved: done


def _progress_path(save_policy: str | Path) -> Path:
    """Where a pre-training that will be saved at ``save_policy`` keeps its state while it
    runs (``pretrained.safetensors`` -> ``pretrained.training.safetensors``)."""
    path = Path(save_policy)
    return path.with_name(f"{path.stem}.training{path.suffix or '.safetensors'}")


def _policy_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """What a saved baseline policy records of how it was trained."""
    keys = ("baseline", "ppo_timesteps", "ppo_kwargs", "ppo_seed")
    return {k: info[k] for k in keys if k in info}


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
    algorithm = str(meta.get("algorithm"))
    compared = ComparedLearner(algorithm, _config(algorithm, meta["config"], str(path)), str(path))
    return run_baseline(
        saved["baseline"],
        compared,
        tasks,
        steps,
        episodes,
        seed,
        num_tasks,
        timesteps=int(saved["ppo_timesteps"]),
        label=label,
        policy=path,
    )


__all__ = [
    "BASELINES",
    "DEFAULT_TIMESTEPS",
    "POLICY_BASELINES",
    "ComparedLearner",
    "check_baseline_applies",
    "compared_learner",
    "evaluate_baseline_checkpoint",
    "is_baseline_checkpoint",
    "load_baseline_policy",
    "oracle_policy",
    "run_baseline",
    "run_env_steps",
]
