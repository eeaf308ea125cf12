"""The guard's rule, once: which steps count as unstable, and what an unstable step becomes.

Physics that goes unstable must never feed a NaN into an update. A step counts as unstable
when its physics does (for MuJoCo: a bad-state warning or a non-finite state, see
:mod:`metarl.mujoco.bad_state`), or when its observation, its reward or the sum of its reward
terms is not finite. An unstable step ends the episode (``terminated``), pays 0 (every reward
term 0 too) and, if its observation is not finite, returns the last finite one instead; it is
flagged ``sim_unstable``.

:func:`guard_steps` applies the rule to a batch of steps, as arrays. Every place that steps a
task env uses it: :class:`~metarl.env_guard.TaskGuard` (the wrapper inside every env a family
builds) with a batch of one, and the sampler's envs (:class:`metarl.sampling.env_slots.EnvSlots`,
stepping the envs inside their guards, or through MuJoCo's batch) with a batch of many. So a
user stepping an env by hand and the sampler see the same episodes, to the bit.

"Finite", for what the sampler stores (observations, rewards, reward terms), means finite
once stored as the batch stores it, float32 (:func:`storable_rows`, :func:`storable`): an
observation or reward of 1e39 is finite as float64 but would be an infinity in the batch, so
the guard and the sampler both count it unstable. Physics state (float64, never stored) is
checked through sums (:func:`all_finite`, :func:`finite_rows`): one fast reduction per array,
and a NaN or an infinity makes the sum non-finite; finite values whose sum overflows (beyond
~1e308) also count as non-finite, which only flags a state that has already blown up.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np


def all_finite(x: Any) -> bool:
    """Whether every element of ``x`` (a number or an array) is finite, through its sum."""
    if isinstance(x, (float, int)):
        return math.isfinite(x)
    return math.isfinite(np.add.reduce(np.asarray(x, dtype=np.float64), axis=None))


def finite_rows(x: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (``[n, ...]``), whether every element is finite, through the row's
    sum (as :func:`all_finite` for one array): ``[n]`` bools."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return np.isfinite(x)
    if x.ndim > 2:
        x = x.reshape(len(x), -1) if len(x) else x.reshape(0, 0)
    return np.isfinite(np.add.reduce(x, axis=1))


#: The largest magnitude a float32 batch stores as a finite number.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def storable(x: np.ndarray) -> np.ndarray:
    """Elementwise, whether ``x`` is finite once stored as float32 (NaN is not)."""
    return np.abs(np.asarray(x, dtype=np.float64)) <= FLOAT32_MAX


def storable_rows(x: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (``[n, ...]``), whether every element is finite once stored as
    float32: ``[n]`` bools (a row's max and min, so a NaN anywhere makes it False)."""
    x = np.asarray(x)
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    if x.shape[1] == 0:
        return np.ones(len(x), dtype=bool)
    return (x.max(axis=1) <= FLOAT32_MAX) & (x.min(axis=1) >= -FLOAT32_MAX)


class GuardedSteps(NamedTuple):
    """A batch of n steps after the guard's rule (see :func:`guard_steps`)."""

    #: ``[n, obs_dim]``: each step's observation, or the last finite one where it was not
    #: finite (as float32).
    obs: np.ndarray
    #: ``[n]``: each step's reward, 0 where the step was unstable.
    rewards: np.ndarray
    #: ``[n]``: whether each episode ended, by the env's own termination or instability.
    terminated: np.ndarray
    #: ``[n]``: whether each step was unstable (``info["sim_unstable"]``).
    unstable: np.ndarray
    #: ``[n]``: where the last finite observation replaced a non-finite one.
    obs_replaced: np.ndarray


def guard_steps(
    obs: np.ndarray,
    last_obs: np.ndarray,
    rewards: np.ndarray,
    terminated: np.ndarray,
    physics_unstable: np.ndarray,
    term_sums: np.ndarray | None = None,
) -> GuardedSteps:
    """Apply the guard's rule (the module doc) to n steps of n episodes.

    Args:
        obs: ``[n, obs_dim]``, each step's new observation (flattened).
        last_obs: ``[n, obs_dim]``, each episode's observation before the step (finite).
        rewards: ``[n]``, each step's reward.
        terminated: ``[n]``, whether the env ended each episode itself.
        physics_unstable: ``[n]``, whether each step's physics went unstable (for MuJoCo,
            :func:`metarl.mujoco.bad_state.mujoco_unstable`; False for envs without physics
            of their own).
        term_sums: ``[n]``, the sum of each step's reward terms (``info["reward_*"]``), or
            None when the steps report none apart from the reward (a
            :class:`~metarl.mujoco.vector_step.VectorStep`'s reward is their sum).

    Returns:
        The steps after the rule; the inputs are left as they were (where nothing changes,
        the result may be the input array itself).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    finite_obs = storable_rows(obs)
    stable = finite_obs & storable(rewards)
    if term_sums is not None:
        stable &= storable(term_sums)
    unstable = ~stable
    unstable |= physics_unstable
    # The common case (every step stable) shares the inputs instead of copying them.
    if unstable.any():
        obs = np.where(finite_obs[:, None], obs, last_obs)
        rewards = np.where(unstable, 0.0, rewards)
        terminated = np.logical_or(terminated, unstable)
    return GuardedSteps(obs, rewards, np.asarray(terminated, dtype=bool), unstable, ~finite_obs)
