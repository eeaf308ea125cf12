"""A tiny family for the sampler tests, importable so that worker processes can unpickle it.

``Flaky-v0``: a point on a line moving by its action, rewarded by its position. A task can
make the episode's physics "blow up" (NaN observation and reward) at step ``blow_at``, end
in a terminal state at step ``end_at``, or raise an exception at step ``raise_at`` (-1: never).
At step ``die_at`` its process kills itself (SIGKILL, as the OOM killer would), once for each
file it can claim (delete) in the folder ``$METARL_FLAKY_DIE_TOKENS``: with no such folder, or
no file left in it, the step goes on as usual, so a replacement worker that replays the
episode lives.

``VectorFlaky-v0``: the same envs, stepped vectorized by an :class:`~metarl.array_step.
ArrayStep` (its blow-ups and terminal states; ``raise_at`` and ``die_at`` act on the process,
so they stay with the env's own step): a second pure-array step beside Navigation2D's.
"""

from __future__ import annotations

import os
import signal
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

import metarl
from metarl.array_step import ArrayStep


class FlakyEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(
        self, blow_at: int = -1, end_at: int = -1, raise_at: int = -1, die_at: int = -1
    ) -> None:
        self.blow_at, self.end_at, self.raise_at = int(blow_at), int(end_at), int(raise_at)
        self.die_at = int(die_at)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.x = 0, float(self.np_random.uniform(-1, 1))
        return np.array([self.x, 0.0]), {}

    def step(self, action):
        if self.t == self.raise_at:
            raise RuntimeError(f"FlakyEnv raised at step {self.t} as asked")
        if self.t == self.die_at and _claim_death_token():
            os.kill(os.getpid(), signal.SIGKILL)
        self.x += float(action[0])
        reward = self.x
        obs = np.array([self.x, float(self.t)])
        if self.t == self.blow_at:
            obs[:], reward = np.nan, float("nan")
        self.t += 1
        return obs, reward, self.t - 1 == self.end_at, False, {"reward_position": reward}


def _claim_death_token() -> bool:
    """Delete one file of ``$METARL_FLAKY_DIE_TOKENS``; whether there was one to delete."""
    folder = os.environ.get("METARL_FLAKY_DIE_TOKENS")
    if not folder or not os.path.isdir(folder):
        return False
    for name in sorted(os.listdir(folder)):
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:  # another worker claimed it first
            continue
        return True
    return False


def plant_death_tokens(folder, count: int) -> None:
    """Let ``count`` FlakyEnv steps at ``die_at`` kill their process (see the module doc)."""
    for i in range(count):
        (folder / f"token_{i}").touch()


class FlakyFamily(metarl.TaskFamily):
    """A point on a line that can blow up, terminate or raise on a given step."""

    id = "Flaky-v0"
    horizon = 10
    parameters = (
        metarl.Parameter("blow_at", "step whose physics goes NaN", metarl.Uniform(-1.0, 100.0), -1),
        metarl.Parameter("end_at", "step that terminates", metarl.Uniform(-1.0, 100.0), -1),
        metarl.Parameter("raise_at", "step that raises", metarl.Uniform(-1.0, 100.0), -1),
        metarl.Parameter("die_at", "step that kills the process", metarl.Uniform(-1.0, 100.0), -1),
    )
    env_class = FlakyEnv


class FlakyStep(ArrayStep):
    """:meth:`FlakyEnv.step` for many envs at once (without ``raise_at`` and ``die_at``)."""

    state = ("t", "x")
    task_attributes = ("blow_at", "end_at")

    def step(self, rows, state, actions):
        t, x = state["t"], state["x"] + actions[:, 0].astype(np.float64)
        obs = np.stack([x, t.astype(np.float64)], axis=1)
        rewards = x.copy()
        blown = t == self.blow_at[rows]
        obs[blown], rewards[blown] = np.nan, np.nan
        return {"t": t + 1, "x": x}, obs, rewards, t == self.end_at[rows]


class VectorFlakyEnv(FlakyEnv):
    vector_step = FlakyStep

    def __init__(self, blow_at: int = -1, end_at: int = -1, raise_at: int = -1, die_at: int = -1):
        super().__init__(blow_at, end_at, raise_at, die_at)
        self.t, self.x = 0, 0.0  # the step's state exists before the first reset


class VectorFlakyFamily(FlakyFamily):
    """FlakyFamily, stepped vectorized by :class:`FlakyStep`."""

    id = "VectorFlaky-v0"
    env_class = VectorFlakyEnv
