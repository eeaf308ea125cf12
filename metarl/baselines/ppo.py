"""The Stable-Baselines3 PPO behind the baselines: pre-training on the whole task
distribution (with or without the task in the observation), and one PPO update on a batch
of the sampler's episodes (how PPO from scratch and PPO fine-tuning adapt, in
:mod:`metarl.baselines.adaptables`).

Pre-training runs on :class:`~metarl.FamilyVecEnv` (the sampler's batched physics; a new
task every episode in each of ``PRETRAIN_ENVS`` envs), so that it can be given the env steps
of the meta-learner it is compared with (tens of millions) in hours, not days. Its PPO
settings (:data:`PRETRAIN_PPO_KWARGS`) are SB3's defaults but for the batch: 16384 env steps
per rollout (64 envs x 256 steps; SB3's default is 2048 x the envs) in minibatches of 1024
instead of 64, which leaves the update a small part of the cost at these budgets. Chosen by
``experiments/ppo_settings.py`` (RESULTS.md): on HalfCheetahCrippledJoint-v0 it learns as
much per env step as 32 envs x 256 steps, in less time, and more than minibatches of 4096.
PPO's updates on a task keep SB3's defaults. The actor always has our policy's architecture
(:mod:`metarl.sb3_bridge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor
from tqdm import tqdm

from metarl.algos.base import LearnerConfig
from metarl.checkpoint import (
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    save_checkpoint,
    section,
)
from metarl.family import TaskFamily
from metarl.sampling import EpisodeBatch
from metarl.sampling.vec_env import FamilyVecEnv
from metarl.sb3_bridge import sb3_ppo

T = TypeVar("T")

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


def tasks_progress(tasks: Sequence[T], description: str) -> Sequence[T]:
    """``tasks`` (or their indices), with a progress bar as they are iterated."""
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


def rollout_buffer(model: PPO, batch: EpisodeBatch) -> RolloutBuffer | None:
    """SB3's rollout buffer for ``model``, holding the episodes of ``batch`` (one task) end to
    end, with SB3's advantages and returns (GAE) computed; None if no episode is usable (all
    had unstable physics, which are left out as everywhere else).

    As SB3's own ``collect_rollouts`` fills it: values and log-probabilities from ``model``'s
    policy, ``episode_starts`` at each episode's first step, and an episode cut by the horizon
    (not terminated) bootstrapped by adding ``gamma * V`` to its last reward. SB3 takes the
    value of the observation after the last step, which a batch does not keep: the value of
    the last observation stands in for it (one step earlier)."""
    if batch.num_tasks != 1:
        raise ValueError(f"rollout_buffer takes a batch of one task, got {batch.num_tasks}")
    episodes = [e for e in range(batch.episodes_per_task) if not bool(batch.sim_unstable[0, e])]
    if not episodes:
        return None
    lengths = [int(batch.lengths[0, e]) for e in episodes]

    def steps_of(x: torch.Tensor) -> torch.Tensor:  # the valid steps, episode after episode
        return torch.cat([x[0, e, :n] for e, n in zip(episodes, lengths, strict=True)])

    obs, actions = steps_of(batch.observations), steps_of(batch.actions)
    rewards = steps_of(batch.rewards).double()
    ends = torch.tensor(lengths).cumsum(0) - 1
    starts = torch.zeros(len(obs), dtype=torch.float64)
    starts[0] = 1.0
    starts[ends[:-1] + 1] = 1.0
    with torch.no_grad():
        values, log_probs, _ = model.policy.evaluate_actions(obs, actions)
    values = values.flatten().double()
    for e, end in zip(episodes, ends.tolist(), strict=True):
        if not bool(batch.terminated[0, e]):  # cut by the horizon: bootstrap
            rewards[end] += model.gamma * values[end]
    buffer = RolloutBuffer(
        len(obs),
        model.observation_space,
        model.action_space,
        device="cpu",
        gamma=model.gamma,
        gae_lambda=model.gae_lambda,
        n_envs=1,
    )
    buffer.observations[:] = obs.numpy().reshape(buffer.observations.shape)
    buffer.actions[:] = actions.numpy().reshape(buffer.actions.shape)
    buffer.rewards[:, 0] = rewards.numpy()
    buffer.episode_starts[:, 0] = starts.numpy()
    buffer.values[:, 0] = values.numpy()
    buffer.log_probs[:, 0] = log_probs.numpy()
    buffer.pos, buffer.full = len(obs), True
    # The buffer ends with an episode's end: nothing to bootstrap past it.
    buffer.compute_returns_and_advantage(last_values=torch.zeros(1), dones=np.ones(1))
    return buffer


def ppo_update(model: PPO, batch: EpisodeBatch) -> None:
    """One PPO update of ``model`` (SB3's ``train``: its epochs, minibatches, clipping) on
    the episodes of ``batch`` (one task), as after one of SB3's own rollouts. Nothing if no
    episode of ``batch`` is usable."""
    buffer = rollout_buffer(model, batch)
    if buffer is None:
        return
    model.rollout_buffer = buffer
    model.train()
