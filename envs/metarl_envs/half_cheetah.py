"""HalfCheetah families of Finn et al. 2017 (MAML), on Gymnasium's ``HalfCheetah-v5``.

Observation, dynamics, reset noise and frame skip are Gymnasium's v5 HalfCheetah (17-D
observation: joint positions without the x position, and velocities). The reward follows the
MAML authors' ``maml_rl`` envs (``half_cheetah_env_rand.py``, ``half_cheetah_env_rand_direc.py``):
control cost ``0.05 * |a|^2``; forward velocity measured as Gymnasium does (x displacement of
the root over one env step). Horizon 200.

- ``HalfCheetahVel-v0``: track a target velocity ``v* ~ U(0, 2)``; reward
  ``-|v - v*| - 0.05 |a|^2``. Out-of-distribution targets ``U(2, 3)``.
- ``HalfCheetahDir-v0``: run forward or backward, ``d in {-1, +1}``; reward
  ``d * v - 0.05 |a|^2``.
- ``HalfCheetahVel-v1``, ``HalfCheetahDir-v1``: the same tasks at the MAML paper's time
  step. The authors' rllab HalfCheetah steps the physics once per action (``frame_skip``
  1, 0.01 s; an episode is 2 s of simulated time), Gymnasium's v5 five times (0.05 s, 10 s).
  v1 keeps everything of v0 but takes ``frame_skip=1``. On HalfCheetahDir this is what
  separates the paper's numbers from v0's (experiments/RESULTS.md, issue 17): MAML-TRPO
  adapts both ways in one step on v1 and mostly backward only on v0. Departures from the
  paper that remain: the observation (rllab adds the torso's centre of mass, 20-D), reset
  noise (rllab: qpos N(0, 0.01), Gymnasium: U(-0.1, 0.1)), velocity (rllab: the torso's
  centre-of-mass velocity; here the root's x displacement over the step) and the MuJoCo
  version (1.31 against 3.x).

Reward terms in ``info``: ``reward_forward`` (the task term) and ``reward_ctrl``.

Version history: v0, first release; v1 (2026-12-05), the paper's time step (``frame_skip``
1 instead of Gymnasium's 5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from metarl.distributions import Choice, Uniform
from metarl.task import Parameter
from metarl_envs._mujoco import (
    CachedModel,
    FrameSkip,
    finite_float,
    record_init_args,
    summed,
    update_init_args,
)
from metarl_envs._vector import HalfCheetahStep

#: Control-cost weight of the MAML HalfCheetah tasks (0.5 * 1e-1 in the authors' code).
MAML_CTRL_COST_WEIGHT = 0.05
HORIZON = 200
#: Physics steps per action of the authors' rllab HalfCheetah (0.01 s; Gymnasium v5: 5).
MAML_FRAME_SKIP = 1


class HalfCheetahVelStep(HalfCheetahStep):
    """:class:`HalfCheetahVelEnv`'s step for a batch of envs (the sampler's fast path)."""

    same_model = True  # the task changes the reward only
    task_attributes = ("velocity",)

    def terms(self, rows: Any, x_velocity: Any, ctrl: Any, after: Any) -> list[np.ndarray]:
        return [-np.abs(x_velocity - self.velocity[rows]), ctrl]


class HalfCheetahDirStep(HalfCheetahStep):
    """:class:`HalfCheetahDirEnv`'s step for a batch of envs (the sampler's fast path)."""

    same_model = True  # the task changes the reward only
    task_attributes = ("direction",)

    def terms(self, rows: Any, x_velocity: Any, ctrl: Any, after: Any) -> list[np.ndarray]:
        return [self.direction[rows] * x_velocity, ctrl]


class HalfCheetahVelEnv(CachedModel, HalfCheetahEnv):
    """HalfCheetah rewarded for running at ``velocity`` (m/s)."""

    vector_step = HalfCheetahVelStep

    def __init__(
        self, velocity: float = 1.0, ctrl_cost_weight: float = MAML_CTRL_COST_WEIGHT, **kwargs: Any
    ) -> None:
        self.set_task(velocity)
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        record_init_args(self, velocity=velocity, ctrl_cost_weight=ctrl_cost_weight, **kwargs)

    def set_task(self, velocity: float) -> None:
        """Switch to another target velocity (the sampler reuses envs this way)."""
        self.velocity = finite_float("velocity", velocity)
        update_init_args(self, velocity=velocity)

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        return summed(
            {
                "reward_forward": -abs(x_velocity - self.velocity),
                "reward_ctrl": -self.control_cost(action),
            }
        )


class HalfCheetahDirEnv(CachedModel, HalfCheetahEnv):
    """HalfCheetah rewarded for running in ``direction`` (+1 forward, -1 backward)."""

    vector_step = HalfCheetahDirStep

    def __init__(
        self, direction: float = 1.0, ctrl_cost_weight: float = MAML_CTRL_COST_WEIGHT, **kwargs: Any
    ) -> None:
        self.set_task(direction)
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        record_init_args(self, direction=direction, ctrl_cost_weight=ctrl_cost_weight, **kwargs)

    def set_task(self, direction: float) -> None:
        """Switch to another running direction (the sampler reuses envs this way)."""
        self.direction = finite_float("direction", direction)
        update_init_args(self, direction=direction)

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        return summed(
            {
                "reward_forward": self.direction * x_velocity,
                "reward_ctrl": -self.control_cost(action),
            }
        )


class HalfCheetahVelFamily(FrameSkip):
    """HalfCheetah running at a target velocity U(0, 2) m/s (MAML); OOD targets U(2, 3).

    Reward -|v - v*| - 0.05|a|^2, horizon 200, on Gymnasium HalfCheetah-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "velocity",
            "target forward velocity (m/s)",
            Uniform(0.0, 2.0),
            default=1.0,
            ood=Uniform(2.0, 3.0),
        ),
    )
    env_class = HalfCheetahVelEnv


class HalfCheetahDirFamily(FrameSkip):
    """HalfCheetah running forward (+1) or backward (-1) (MAML).

    Reward d * v - 0.05|a|^2, horizon 200, on Gymnasium HalfCheetah-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "direction",
            "running direction: +1 forward, -1 backward",
            Choice([-1, 1]),
            default=1,
        ),
    )
    env_class = HalfCheetahDirEnv


class HalfCheetahVelV1Family(HalfCheetahVelFamily):
    """HalfCheetahVel at the MAML paper's time step: one physics step (0.01 s) per action.

    Reward -|v - v*| - 0.05|a|^2, horizon 200 (2 s simulated), on Gymnasium HalfCheetah-v5
    with ``frame_skip=1``.
    """

    frame_skip = MAML_FRAME_SKIP


class HalfCheetahDirV1Family(HalfCheetahDirFamily):
    """HalfCheetahDir at the MAML paper's time step: one physics step (0.01 s) per action.

    Reward d * v - 0.05|a|^2, horizon 200 (2 s simulated), on Gymnasium HalfCheetah-v5
    with ``frame_skip=1``.
    """

    frame_skip = MAML_FRAME_SKIP
