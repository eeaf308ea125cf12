"""The Stable-Baselines3 PPO runs behind the baselines: pre-training on the whole task
distribution (with or without the task in the observation), and PPO from scratch on one task
with an adaptation budget.

Pre-training runs on :class:`~metarl.FamilyVecEnv` (the sampler's batched physics; a new
task every episode in each of ``PRETRAIN_ENVS`` envs), so that it can be given the env steps
of the meta-learner it is compared with (tens of millions) in hours, not days. Its PPO
settings (:data:`PRETRAIN_PPO_KWARGS`) are SB3's defaults but for the batch: 16384 env steps
per rollout (64 envs x 256 steps; SB3's default is 2048 x the envs) in minibatches of 1024
instead of 64, which leaves the update a small part of the cost at these budgets. Chosen by
``experiments/ppo_settings.py`` (RESULTS.md): on HalfCheetahCrippledJoint-v0 it learns as
much per env step as 32 envs x 256 steps, in less time, and more than minibatches of 4096.
PPO from scratch keeps SB3's defaults. The actor always has our policy's architecture
(:mod:`metarl.sb3_bridge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor
from tqdm import tqdm

from metarl import seeds
from metarl.algos.base import LearnerConfig
from metarl.baselines.envs import TaskEnv, run_episodes
from metarl.checkpoint import (
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    save_checkpoint,
    section,
)
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy
from metarl.sampling.vec_env import FamilyVecEnv
from metarl.sb3_bridge import params_to_sb3, sb3_ppo
from metarl.task import Task

#: Envs PPO pre-training steps at once (SB3's ``n_envs``).
PRETRAIN_ENVS = 64
#: PPO's settings for pre-training (SB3's defaults otherwise; see the module doc).
PRETRAIN_PPO_KWARGS: dict[str, Any] = {"n_steps": 256, "batch_size": 1024}
#: Env steps between the saved states of a pre-training that can be resumed.
PRETRAIN_CHECKPOINT_EVERY = 4_000_000


class _Progress(BaseCallback):
    """A tqdm bar over PPO's env steps (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int, description: str, initial: int = 0) -> None:
        super().__init__()
        self._bar = tqdm(total=total, initial=initial, desc=description, unit="step", disable=None)

    def _on_step(self) -> bool:
        self._bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self._bar.close()


class _RolloutReturns(BaseCallback):
    """Collects the return of every episode that ends during each of PPO's rollouts:
    ``returns[k]`` for rollout ``k`` (collected after ``k`` PPO updates)."""

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[list[float | None]] = [[]]

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:  # Monitor's record of an episode that just ended
                unstable = info.get("sim_unstable", False)
                self.returns[-1].append(None if unstable else float(info["episode"]["r"]))
        return True

    def _on_rollout_end(self) -> None:
        self.returns.append([])


def tasks_progress(tasks: Sequence[Task], description: str) -> Sequence[Task]:
    """``tasks``, with a progress bar as they are iterated (a task can take a minute)."""
    return tqdm(tasks, desc=description, unit="task", disable=None)


def _architecture(config: LearnerConfig) -> dict[str, Any]:
    return dict(
        hidden_sizes=config.hidden_sizes, activation=config.activation, init_std=config.init_std
    )


class _SaveProgress(BaseCallback):
    """Every ``every`` env steps (before a rollout, once the update on the last one is done)
    and at the end, write the training's state to ``path`` (see :func:`pretrain_ppo`)."""

    def __init__(self, path: Path, every: int, record: dict[str, Any]) -> None:
        super().__init__()
        self.path, self.every, self.record = path, every, record
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = self.num_timesteps + self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:  # the previous rollout's update is done
        if self.num_timesteps >= self._next:
            _save_training(self.model, self.path, self.record)
            self._next = self.num_timesteps + self.every

    def _on_training_end(self) -> None:
        _save_training(self.model, self.path, self.record)


def _save_training(model: PPO, path: Path, record: dict[str, Any]) -> None:
    tensors = {f"policy/{k}": v for k, v in model.policy.state_dict().items()}
    optimizer_tensors, optimizer = optimizer_state(model.policy.optimizer)
    tensors.update({f"optimizer/{k}": v for k, v in optimizer_tensors.items()})
    meta = {
        "ppo_training": record,
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "optimizer": optimizer,
    }
    save_checkpoint(path, tensors, meta)


def _resume_training(model: PPO, path: Path, record: dict[str, Any]) -> int:
    """Load the state :class:`_SaveProgress` wrote into ``model``; its env steps done."""
    tensors, meta = load_checkpoint(path)
    if meta.get("ppo_training") != record:
        raise ValueError(
            f"{path} holds PPO training of other settings ({meta.get('ppo_training')}), not "
            f"{record}; delete it to start afresh"
        )
    model.policy.load_state_dict(section(tensors, "policy"))
    load_optimizer_state(model.policy.optimizer, section(tensors, "optimizer"), meta["optimizer"])
    model.num_timesteps = int(meta["num_timesteps"])
    model._n_updates = int(meta["n_updates"])
    # Fresh random streams from here (a resumed run is not bit-identical to an unbroken one).
    model.set_random_seed(int(record["seed"]) + model.num_timesteps)
    return model.num_timesteps


def pretrain_ppo(
    family: TaskFamily,
    config: LearnerConfig,
    timesteps: int,
    seed: int = 0,
    observe_task: bool = False,
    ppo_kwargs: Mapping[str, Any] | None = None,
    progress: str | Path | None = None,
) -> PPO:
    """SB3 PPO trained for ``timesteps`` env steps on the whole training distribution of
    ``family`` (a new task every episode, in each of ``PRETRAIN_ENVS`` envs of a
    :class:`~metarl.FamilyVecEnv`), with the actor architecture of ``config``;
    ``observe_task``: the oracle, which sees each task's features. ``ppo_kwargs`` change
    :data:`PRETRAIN_PPO_KWARGS` and SB3's other PPO defaults (``learning_rate`` ...).

    ``progress``: a file where the training's state (actor, critic, optimiser, env steps
    done; safetensors + JSON) is written every ``PRETRAIN_CHECKPOINT_EVERY`` env steps. If
    it exists when training starts, training continues from it (same settings required) to
    ``timesteps`` in all: a long pre-training killed midway loses at most that many steps.
    A resumed training draws new random streams, so it is not bit-identical to an unbroken
    one."""
    envs = VecMonitor(FamilyVecEnv(family, PRETRAIN_ENVS, observe_task=observe_task, seed=seed))
    kwargs = {**PRETRAIN_PPO_KWARGS, **(ppo_kwargs or {})}
    model = sb3_ppo(family, **_architecture(config), seed=seed, env=envs, **kwargs)
    name = "oracle" if observe_task else "pretrained"
    callbacks: list[BaseCallback] = []
    done = 0
    if progress is not None:
        progress = Path(progress)
        record = {
            "family": family.id,
            "observe_task": observe_task,
            "seed": seed,
            "ppo_kwargs": {k: kwargs[k] for k in sorted(kwargs)},
            "architecture": {**_architecture(config), "hidden_sizes": list(config.hidden_sizes)},
        }
        if progress.exists():
            done = _resume_training(model, progress, record)
        callbacks.append(_SaveProgress(progress, PRETRAIN_CHECKPOINT_EVERY, record))
    if done < timesteps:
        callbacks.append(_Progress(timesteps, f"PPO ({name}) {family.id}", initial=done))
        model.learn(timesteps - done, callback=callbacks, reset_num_timesteps=done == 0)
    return model


def oracle_returns(
    policy: GaussianMLPPolicy,
    params: Mapping[str, torch.Tensor],
    family: TaskFamily,
    tasks: Sequence[Task],
    steps: int,
    episodes: int,
    seed: int,
) -> list[list[list[float | None]]]:
    """``[task][step][episode]`` returns of the oracle, the actor ``params`` of ``policy``
    (an observation with the task's features appended): no adaptation, every step samples
    ``episodes`` more episodes, acting stochastically as in training. Step ``k`` of task ``i``
    is seeded from ``(seed, k, i)``: its resets and its action noise."""
    out = []
    for i, task in enumerate(tasks_progress(tasks, "oracle")):
        envs = [TaskEnv(family, task, observe_task=True) for _ in range(episodes)]
        try:
            per_step = []
            for k in range(steps + 1):
                resets, noise_seed = seeds.oracle_step(seed, k, i)
                generator = torch.Generator().manual_seed(noise_seed)

                @torch.no_grad()
                def act(obs: np.ndarray, generator: torch.Generator = generator) -> np.ndarray:
                    x = torch.as_tensor(obs, dtype=torch.float32)
                    mean, log_std = torch.func.functional_call(policy, dict(params), (x,))
                    noise = torch.randn(mean.shape, generator=generator)
                    return (mean + log_std.exp() * noise).numpy()

                reset_seeds = resets.generate_state(episodes).tolist()
                per_step.append(run_episodes(envs, act, reset_seeds))
        finally:
            for env in envs:
                env.close()
        out.append(per_step)
    return out


def ppo_from_scratch_returns(
    family: TaskFamily,
    config: LearnerConfig,
    task: Task,
    steps: int,
    episodes: int,
    seed: int,
    initial_actor: Mapping[str, torch.Tensor] | None = None,
) -> list[list[float | None]]:
    """``[step][episode]`` returns of SB3 PPO learning ``task`` from a fresh policy with the
    adaptation budget: ``steps + 1`` rollouts of ``episodes`` envs x the horizon (the env steps
    of ``episodes`` episodes per step), one PPO update after each. Step ``k`` holds the
    episodes that ended during rollout ``k`` (after ``k`` updates): ``episodes`` of them
    unless episodes end early (a Hopper that falls starts a new one within the rollout).

    ``initial_actor``: start from these actor parameters (one of our parameter dicts, e.g.
    a pretrained policy) instead of a fresh actor: PPO fine-tuning. The critic starts fresh
    either way (a saved policy keeps only its actor)."""
    horizon = family.horizon
    envs = DummyVecEnv([lambda: Monitor(family.make_env(task)) for _ in range(episodes)])
    envs.seed(seed)
    model = sb3_ppo(
        family,
        **_architecture(config),
        seed=seed,
        env=envs,
        n_steps=horizon,
        batch_size=horizon,  # `episodes` minibatches per epoch
    )
    if initial_actor is not None:
        params_to_sb3(model, initial_actor)
    record = _RolloutReturns()
    model.learn((steps + 1) * episodes * horizon, callback=record)
    envs.close()
    return record.returns[: steps + 1]
