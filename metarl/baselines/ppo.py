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
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor
from tqdm import tqdm

from metarl.algos.base import LearnerConfig
from metarl.baselines.envs import TaskEnv, run_episodes
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy
from metarl.sampling.vec_env import FamilyVecEnv
from metarl.sb3_bridge import sb3_ppo
from metarl.task import Task

#: Envs PPO pre-training steps at once (SB3's ``n_envs``).
PRETRAIN_ENVS = 64
#: PPO's settings for pre-training (SB3's defaults otherwise; see the module doc).
PRETRAIN_PPO_KWARGS: dict[str, Any] = {"n_steps": 256, "batch_size": 1024}


class _Progress(BaseCallback):
    """A tqdm bar over PPO's env steps (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int, description: str) -> None:
        super().__init__()
        self._bar = tqdm(total=total, desc=description, unit="step", disable=None)

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


def pretrain_ppo(
    family: TaskFamily,
    config: LearnerConfig,
    timesteps: int,
    seed: int = 0,
    observe_task: bool = False,
    ppo_kwargs: Mapping[str, Any] | None = None,
) -> PPO:
    """SB3 PPO trained for ``timesteps`` env steps on the whole training distribution of
    ``family`` (a new task every episode, in each of ``PRETRAIN_ENVS`` envs of a
    :class:`~metarl.FamilyVecEnv`), with the actor architecture of ``config``;
    ``observe_task``: the oracle, which sees each task's features. ``ppo_kwargs`` change
    :data:`PRETRAIN_PPO_KWARGS` and SB3's other PPO defaults (``learning_rate`` ...)."""
    envs = VecMonitor(FamilyVecEnv(family, PRETRAIN_ENVS, observe_task=observe_task, seed=seed))
    kwargs = {**PRETRAIN_PPO_KWARGS, **(ppo_kwargs or {})}
    model = sb3_ppo(family, **_architecture(config), seed=seed, env=envs, **kwargs)
    name = "oracle" if observe_task else "pretrained"
    model.learn(timesteps, callback=_Progress(timesteps, f"PPO ({name}) {family.id}"))
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
                sequence = np.random.SeedSequence((seed, k, i))
                resets, actions = sequence.spawn(2)
                generator = torch.Generator().manual_seed(
                    int(actions.generate_state(1, np.uint64)[0] >> np.uint64(1))
                )

                @torch.no_grad()
                def act(obs: np.ndarray, generator: torch.Generator = generator) -> np.ndarray:
                    x = torch.as_tensor(obs, dtype=torch.float32)
                    mean, log_std = torch.func.functional_call(policy, dict(params), (x,))
                    noise = torch.randn(mean.shape, generator=generator)
                    return (mean + log_std.exp() * noise).numpy()

                seeds = resets.generate_state(episodes).tolist()
                per_step.append(run_episodes(envs, act, seeds))
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
) -> list[list[float | None]]:
    """``[step][episode]`` returns of SB3 PPO learning ``task`` from a fresh policy with the
    adaptation budget: ``steps + 1`` rollouts of ``episodes`` envs x the horizon (the env steps
    of ``episodes`` episodes per step), one PPO update after each. Step ``k`` holds the
    episodes that ended during rollout ``k`` (after ``k`` updates): ``episodes`` of them
    unless episodes end early (a Hopper that falls starts a new one within the rollout)."""
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
    record = _RolloutReturns()
    model.learn((steps + 1) * episodes * horizon, callback=record)
    envs.close()
    return record.returns[: steps + 1]
