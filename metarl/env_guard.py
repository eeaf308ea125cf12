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

Reward terms follow Gymnasium's convention: ``info`` keys starting with ``reward_``, adding
up to the reward.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.task import Task

try:  # MuJoCo is a dependency, but the guard also serves pure-Python envs.
    import mujoco

    #: MuJoCo's bad-state warnings, after each of which MuJoCo resets the state.
    BAD_STATE_WARNINGS = [
        int(mujoco.mjtWarning.mjWARN_BADQACC),
        int(mujoco.mjtWarning.mjWARN_BADQPOS),
        int(mujoco.mjtWarning.mjWARN_BADQVEL),
    ]
    _MjData: type | None = mujoco.MjData
except ImportError:  # pragma: no cover - mujoco is a hard dependency
    BAD_STATE_WARNINGS = []
    _MjData = None

REWARD_TERM_PREFIX = "reward_"


def reward_terms(info: dict[str, Any]) -> dict[str, float]:
    """The reward terms reported in ``info`` (keys starting with ``reward_``)."""
    return {k: v for k, v in info.items() if k.startswith(REWARD_TERM_PREFIX)}


def _all_finite(x: Any) -> bool:
    """Whether every element of ``x`` is finite.

    Checked through the sum (one fast reduction; this runs several times per env step): a NaN
    or infinity makes the sum non-finite. Finite values whose sum overflows (beyond ~1e308)
    also count as non-finite, which only flags a state that has already blown up.
    """
    if isinstance(x, (float, int)):
        return math.isfinite(x)
    return math.isfinite(np.add.reduce(np.asarray(x, dtype=np.float64), axis=None))


def bad_state_counts(data: Any) -> np.ndarray | None:
    """A live view of MuJoCo's warning counters of ``data`` (None if not an ``MjData``)."""
    return data.warning.number if _MjData is not None and isinstance(data, _MjData) else None


def clear_bad_state_warnings(counts: np.ndarray) -> None:
    """Zero the bad-state counters before a step.

    MuJoCo resets the state and sets the counter to 1 on every bad-state event, so a counter
    that was already 1 would hide a second event.
    """
    counts[BAD_STATE_WARNINGS] = 0


def bad_state_warned(counts: np.ndarray) -> bool:
    """Whether a bad-state warning was counted since :func:`clear_bad_state_warnings`."""
    return bool(counts[BAD_STATE_WARNINGS].any())


def mujoco_unstable(data: Any, counts: np.ndarray) -> bool:
    """Whether the last step raised a bad-state warning or left a non-finite state."""
    if bad_state_warned(counts):
        return True
    return not (_all_finite(data.qpos) and _all_finite(data.qvel))


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

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if not _all_finite(obs):
            raise RuntimeError(f"reset of {self.task!r} produced a non-finite observation")
        self._step_index = 0
        self._last_obs = obs
        info["task"] = self.task
        return obs, info

    def _checked_action(self, action: Any) -> Any:
        space = self.action_space
        if not isinstance(space, gym.spaces.Box):
            return action
        try:
            arr = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"action {action!r} given to {self.task!r} is not numeric; expected an array "
                f"of shape {space.shape}"
            ) from None
        if arr.shape != space.shape:
            raise ValueError(
                f"action of shape {arr.shape} given to {self.task!r}; expected {space.shape}"
            )
        if not _all_finite(arr):
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
        unstable = (
            (self.mj_data is not None and mujoco_unstable(self.mj_data, self.warning_counts))
            or not _all_finite(obs)
            or not _all_finite(reward)
            or not _all_finite(sum(terms.values(), 0.0))
        )
        if unstable:
            if not _all_finite(obs):
                obs = self._last_obs
            reward = 0.0
            for k in terms:
                info[k] = 0.0
            terminated = True
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
