"""Vectorised steps of Gymnasium's v5 locomotion envs, which the bundled families build on.

Each class here computes, for a batch of envs and from their MuJoCo state, exactly what the
Gymnasium env's ``step`` computes for one env: the same operations on the same dtypes, so the
results agree to the bit (``tests/test_vector_step.py`` checks every bundled family). A family
changes only its reward terms, by overriding :meth:`terms`; the terms are added in the order
the env reports them, starting from 0, as :func:`metarl_envs._mujoco.summed` does.

See :class:`metarl.mujoco.VectorStep` for how the sampler uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from metarl.mujoco.vector_step import VectorStep

Arrays = Mapping[str, np.ndarray]


def summed_terms(terms: Sequence[np.ndarray]) -> np.ndarray:
    """Per-env rewards: the terms (each ``[m]``) added in order from 0, in float64."""
    total = np.zeros(len(terms[0]))
    for term in terms:
        total = total + np.asarray(term, dtype=np.float64)
    return total


def control_cost(weight: float, actions: np.ndarray) -> np.ndarray:
    """Gymnasium's ``weight * sum(action ** 2)`` per row, in the actions' dtype (as the env
    computes it on its float32 action)."""
    return weight * np.sum(np.square(actions), axis=1)


class PlanarStep(VectorStep):
    """HalfCheetah, Hopper and Walker2d (v5): x velocity from the root's x position, the
    observation ``qpos[1:]`` (all of ``qpos`` if positions are included) and ``qvel``, clipped
    to ``±velocity_clip`` when set. Reward terms: forward and control, by default."""

    fields = ("qpos", "qvel")
    #: Hopper and Walker2d clip the observed velocities to ±10; HalfCheetah does not.
    velocity_clip: ClassVar[float | None] = None

    def __init__(self, envs: Sequence[Any]) -> None:
        super().__init__(envs)
        self.exclude_x = bool(self.shared("_exclude_current_positions_from_observation"))
        self.ctrl_cost_weight = float(self.shared("_ctrl_cost_weight"))
        self.forward_reward_weight = float(self.shared("_forward_reward_weight"))

    def observations(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        position = qpos[:, 1:] if self.exclude_x else qpos
        if self.velocity_clip is not None:
            qvel = np.clip(qvel, -self.velocity_clip, self.velocity_clip)
        return np.concatenate((position, qvel), axis=1)

    def healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray | None:
        """Per-env health (None: the robot cannot fall, as HalfCheetah)."""
        return None

    def terms(
        self, rows: np.ndarray, x_velocity: np.ndarray, ctrl: np.ndarray, after: Arrays
    ) -> list[np.ndarray]:
        """The reward terms in the env's order; ``ctrl`` is the (negative) control term."""
        return [self.forward_reward_weight * x_velocity, ctrl]

    def outputs(
        self, rows: np.ndarray, before: Arrays, after: Arrays, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        qpos, qvel = after["qpos"], after["qvel"]
        x_velocity = (qpos[:, 0] - before["qpos"][:, 0]) / self.dt
        ctrl = -control_cost(self.ctrl_cost_weight, self.controls(rows, actions))
        terms = self.terms(rows, x_velocity, ctrl, after)
        healthy = self.healthy(qpos, qvel)
        if healthy is None:
            terminated = np.zeros(len(rows), dtype=bool)
        else:
            terms.append(healthy * self.healthy_reward)
            terminated = ~healthy & self.terminate_when_unhealthy
        return self.observations(qpos, qvel), summed_terms(terms), terminated


class HalfCheetahStep(PlanarStep):
    """Gymnasium HalfCheetah-v5."""


class _FallingPlanarStep(PlanarStep):
    """Hopper and Walker2d: a healthy bonus, and the episode ends when the robot falls."""

    velocity_clip = 10.0

    def __init__(self, envs: Sequence[Any]) -> None:
        super().__init__(envs)
        self.healthy_reward = float(self.shared("_healthy_reward"))
        self.terminate_when_unhealthy = bool(self.shared("_terminate_when_unhealthy"))
        self.z_range = tuple(map(float, self.shared("_healthy_z_range")))
        self.angle_range = tuple(map(float, self.shared("_healthy_angle_range")))

    def healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        z, angle = qpos[:, 1], qpos[:, 2]
        (min_z, max_z), (min_angle, max_angle) = self.z_range, self.angle_range
        return (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)


class HopperStep(_FallingPlanarStep):
    """Gymnasium Hopper-v5 (also requires every joint coordinate and velocity within the
    healthy state range)."""

    def __init__(self, envs: Sequence[Any]) -> None:
        super().__init__(envs)
        self.state_range = tuple(map(float, self.shared("_healthy_state_range")))

    def healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        state = np.concatenate((qpos, qvel), axis=1)[:, 2:]
        low, high = self.state_range
        in_range = np.all((low < state) & (state < high), axis=1)
        return super().healthy(qpos, qvel) & in_range


class Walker2dStep(_FallingPlanarStep):
    """Gymnasium Walker2d-v5."""


class AntStep(VectorStep):
    """Gymnasium Ant-v5: x velocity from the main body's ``xpos``, the observation ``qpos``
    (without x, y by default), ``qvel`` and the clipped external contact forces, and the
    forward, control, contact and healthy terms; the episode ends when the torso leaves the
    healthy z range."""

    fields = ("qpos", "qvel", "xpos", "cfrc_ext")
    post_constraint = True  # cfrc_ext

    def __init__(self, envs: Sequence[Any]) -> None:
        super().__init__(envs)
        self.exclude_xy = bool(self.shared("_exclude_current_positions_from_observation"))
        self.include_cfrc_ext = bool(self.shared("_include_cfrc_ext_in_observation"))
        self.ctrl_cost_weight = float(self.shared("_ctrl_cost_weight"))
        self.contact_cost_weight = float(self.shared("_contact_cost_weight"))
        self.forward_reward_weight = float(self.shared("_forward_reward_weight"))
        self.healthy_reward = float(self.shared("_healthy_reward"))
        self.terminate_when_unhealthy = bool(self.shared("_terminate_when_unhealthy"))
        self.z_range = tuple(map(float, self.shared("_healthy_z_range")))
        self.contact_range = tuple(map(float, self.shared("_contact_force_range")))
        main_body = self.shared("_main_body")
        self.main_body = envs[0].model.body(main_body).id

    def terms(
        self,
        rows: np.ndarray,
        x_velocity: np.ndarray,
        costs: list[np.ndarray],
        survive: np.ndarray,
        after: Arrays,
    ) -> list[np.ndarray]:
        """The reward terms in the env's order; ``costs`` are the (negative) control and
        contact terms, ``survive`` the healthy bonus."""
        return [self.forward_reward_weight * x_velocity, *costs, survive]

    def outputs(
        self, rows: np.ndarray, before: Arrays, after: Arrays, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        qpos, qvel = after["qpos"], after["qvel"]
        body = self.main_body
        xy_velocity = (after["xpos"][:, body, :2] - before["xpos"][:, body, :2]) / self.dt
        contact = np.clip(after["cfrc_ext"], *self.contact_range)
        position = qpos[:, 2:] if self.exclude_xy else qpos
        parts = [position, qvel]
        if self.include_cfrc_ext:
            parts.append(contact[:, 1:].reshape(len(rows), -1))
        z = qpos[:, 2]
        finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        healthy = finite & (self.z_range[0] <= z) & (z <= self.z_range[1])
        contact_cost = self.contact_cost_weight * np.sum(np.square(contact), axis=(1, 2))
        costs = [
            -control_cost(self.ctrl_cost_weight, self.controls(rows, actions)),
            -contact_cost,
        ]
        terms = self.terms(rows, xy_velocity[:, 0], costs, healthy * self.healthy_reward, after)
        terminated = ~healthy & self.terminate_when_unhealthy
        return np.concatenate(parts, axis=1), summed_terms(terms), terminated
