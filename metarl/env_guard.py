"""The safety wrapper every task env runs inside.

:class:`TaskGuard` gives every family's env, bundled or third-party, the same guarantees:

- a non-finite action raises ``ValueError`` naming the task and the step; finite actions are
  clipped to the action space (Box spaces);
- unstable physics ends the episode with ``info["sim_unstable"] = True``: MuJoCo's bad-state
  warnings (``mjWARN_BADQACC/QPOS/QVEL``, after which MuJoCo silently resets the state), a
  non-finite MuJoCo state, or a non-finite observation, reward or reward term. Such a step
  returns reward 0 with every ``reward_*`` term 0, and the last finite observation if the new
  one is not finite: a NaN never reaches the learner;
- ``info["task"]`` holds the :class:`~metarl.Task` on reset and on every step.

What counts as unstable and what an unstable step becomes is the rule of
:mod:`metarl.instability`, which the sampler's batched stepping applies too; MuJoCo's
bad-state warnings are read through :mod:`metarl.mujoco.bad_state`.

Reward terms follow Gymnasium's convention: ``info`` keys starting with ``reward_``, adding
up to the reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from metarl.excerpt import shown
from metarl.instability import guard_steps, storable_rows
from metarl.mujoco.bad_state import bad_state_counts, clear_bad_state_warnings, mujoco_unstable
from metarl.mujoco.messages import route_warnings
from metarl.task import Task

REWARD_TERM_PREFIX = "reward_"


def reward_terms(info: dict[str, Any]) -> dict[str, float]:
    """The reward terms reported in ``info`` (keys starting with ``reward_``)."""
    return {k: v for k, v in info.items() if k.startswith(REWARD_TERM_PREFIX)}


def _row(obs: Any) -> np.ndarray:
    """One observation as a batch of one flat row, for :func:`~metarl.instability.guard_steps`."""
    return np.asarray(obs, dtype=np.float64).reshape(1, -1)


class TaskGuard(gym.Wrapper):
    """Checks actions, detects unstable physics and reports the task; see the module doc."""

    def __init__(self, env: gym.Env, task: Task) -> None:
        super().__init__(env)
        self.task = task
        self._step_index = 0
        self._last_obs: Any = None
        data = getattr(env.unwrapped, "data", None)
        #: MuJoCo's warning counters of the env's ``MjData`` (None if it has none).
        self.warning_counts = bad_state_counts(data)
        #: The env's ``MjData`` (None if it has none).
        self.mj_data = data if self.warning_counts is not None else None
        if self.mj_data is not None:
            route_warnings()  # MuJoCo's warnings to logging, not ./MUJOCO_LOG.TXT

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if not storable_rows(_row(obs))[0]:
            raise RuntimeError(
                f"reset of {self.task!r} produced an observation that is not finite as float32 "
                f"(the sampler's batch): {shown(obs)}"
            )
        self._step_index = 0
        self._last_obs = obs
        info["task"] = self.task
        return obs, info

    def _checked_action(self, action: Any) -> Any:
        space = self.action_space
        if not isinstance(space, gym.spaces.Box):
            return action
        try:
            arr = np.asarray(action)
        except (TypeError, ValueError, RecursionError):
            arr = np.asarray(None, dtype=object)
        if arr.dtype.kind not in "iuf":  # strings, bools, objects: not an action
            raise ValueError(
                f"action {shown(action)} given to {self.task!r} is not numeric; expected an "
                f"array of numbers of shape {space.shape}"
            )
        arr = arr.astype(np.float64)
        if arr.shape != space.shape:
            raise ValueError(
                f"action of shape {arr.shape} given to {self.task!r}; expected {space.shape}"
            )
        if not np.isfinite(arr).all():  # elementwise: a finite 1e308 is clipped, not refused
            raise ValueError(
                f"non-finite action {arr} at step {self._step_index} of {self.task!r}; "
                f"actions must be finite (they are clipped to [{space.low}, {space.high}])"
            )
        return np.clip(arr, space.low, space.high).astype(space.dtype)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        action = self._checked_action(action)
        if self.mj_data is not None:
            clear_bad_state_warnings(self.warning_counts)
        obs, reward, terminated, truncated, info = self.env.step(action)
        terms = reward_terms(info)
        physics = self.mj_data is not None and mujoco_unstable(self.mj_data, self.warning_counts)
        # The rule of metarl.instability, on a batch of one; the env's own objects are kept
        # wherever the rule keeps the step's values.
        out = guard_steps(
            _row(obs),
            _row(self._last_obs),
            np.array([reward], dtype=np.float64),
            np.array([terminated]),
            np.array([physics]),
            np.array([sum(terms.values(), 0.0)]),
        )
        unstable = bool(out.unstable[0])
        if out.obs_replaced[0]:
            obs = self._last_obs
        if unstable:
            reward, terminated = float(out.rewards[0]), True
            info.update(dict.fromkeys(terms, 0.0))  # the terms are paid 0 with the reward
        info["sim_unstable"] = unstable
        info["task"] = self.task
        self._step_index += 1
        self._last_obs = obs
        return obs, reward, terminated, truncated, info


def guard_of(env: gym.Env) -> TaskGuard:
    """The :class:`TaskGuard` inside an env built by a family's ``make_env``."""
    inner = env
    while not isinstance(inner, TaskGuard):
        if not isinstance(inner, gym.Wrapper):
            raise ValueError(f"{env!r} was not built by a family's make_env (no TaskGuard)")
        inner = inner.env
    return inner
