"""Envs for the Stable-Baselines3 baselines: a family's whole task distribution as one env (a
new task at every reset), optionally with the task in the observation (the oracle's
pre-training)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from metarl import seeds
from metarl.family import TaskFamily
from metarl.task import Task


class TaskEnv(gym.Env):
    """One env for a family: its task drawn anew from the training distribution at every reset
    (``task=None``: PPO pre-trained on the whole distribution), or fixed.

    With ``observe_task``, :meth:`TaskFamily.task_features` of the current task is appended to
    every observation: the oracle, which knows what the others must find out by adapting.

    Args:
        family: the task family.
        task: a fixed task, or None to draw one per episode.
        observe_task: append the task's features to the observation.
        seed: seeds the task draws (a ``reset(seed=...)`` reseeds them too).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        family: TaskFamily,
        task: Task | None = None,
        observe_task: bool = False,
        seed: int = 0,
    ) -> None:
        self.family = family
        self.fixed_task = task
        self.observe_task = observe_task
        self._rng = np.random.default_rng(seed)
        self.task = task if task is not None else family.sample_task(self._rng)
        self._env = family.make_env(self.task)
        self.action_space = self._env.action_space
        space = self._env.observation_space
        if observe_task:
            n = family.task_features(self.task).size
            space = gym.spaces.Box(
                np.concatenate([space.low, np.full(n, -np.inf)]).astype(space.dtype),
                np.concatenate([space.high, np.full(n, np.inf)]).astype(space.dtype),
                dtype=space.dtype,
            )
        self.observation_space = space

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        if not self.observe_task:
            return obs
        features = self.family.task_features(self.task).astype(obs.dtype)
        return np.concatenate([obs, features])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seeds.task_env_draws(seed))
        if self.fixed_task is None:
            self.task = self.family.sample_task(self._rng)
            if not self.family.retask_env(self._env, self.task):
                self._env.close()
                self._env = self.family.make_env(self.task)
        obs, info = self._env.reset(seed=seed, options=options)
        return self._observe(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._env.step(action)
        return self._observe(obs), float(reward), terminated, truncated, info

    def close(self) -> None:
        self._env.close()
