"""Robot-dynamics families: HalfCheetah, Hopper and Walker2d with randomised physics.

The ``rand_param_envs`` convention (Rothfuss et al. 2019, ProMP; also used by PEARL): each
element of the model's

- ``body_mass`` (one per body, the world excluded) is scaled by ``1.5 ** U(-3, 3)``,
- ``body_inertia`` (3 per body, the world excluded) by ``1.5 ** U(-3, 3)``,
- ``dof_damping`` (one per degree of freedom) by ``1.3 ** U(-3, 3)``,
- ``geom_friction`` (3 per geom: sliding, torsional, rolling) by ``1.5 ** U(-3, 3)``,

each independently. Damping uses base 1.3, as in ``rand_param_envs/base.py``, not 1.5. A
task holds the four multiplier arrays (``body_mass_scale`` ...); the nominal robot is all
ones. ``log_scale_limit`` (default 3) and ``rand_params`` (which of the four to randomise)
are family keywords, as in the source. After scaling, ``mujoco.mj_setConst`` recomputes the
model's derived constants.

Reward, observation and termination are Gymnasium's v5 envs' own (forward velocity, control
cost, and for Hopper and Walker2d the healthy bonus and falling termination); horizon 200 as
in ProMP and PEARL.

Version history: v0, first release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv, expand_model_path
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from metarl.distributions import LogUniform
from metarl.family import TaskFamily
from metarl.mujoco.messages import compile_model
from metarl.task import Parameter
from metarl_envs._mujoco import CachedModel, SummedReward, record_init_args, update_init_args
from metarl_envs._vector import HalfCheetahStep, HopperStep, Walker2dStep

HORIZON = 200
RAND_PARAMS = ("body_mass", "body_inertia", "dof_damping", "geom_friction")
#: Base of the log-uniform scale of each field (rand_param_envs/base.py).
SCALE_BASE = {"body_mass": 1.5, "body_inertia": 1.5, "dof_damping": 1.3, "geom_friction": 1.5}
_DESCRIPTION = {
    "body_mass": "mass multiplier of each body (world excluded)",
    "body_inertia": "inertia multiplier of each body and principal axis (world excluded)",
    "dof_damping": "damping multiplier of each degree of freedom",
    "geom_friction": "friction multiplier of each geom (sliding, torsional, rolling)",
}


def _field_view(model: mujoco.MjModel, field: str) -> np.ndarray:
    """The randomisable slice of a model array (bodies skip the world body)."""
    array = getattr(model, field)
    return array[1:] if field in ("body_mass", "body_inertia") else array


def scale_shapes(model: mujoco.MjModel) -> dict[str, tuple[int, ...]]:
    """Shape of each field's multiplier array for ``model``."""
    return {field: _field_view(model, field).shape for field in RAND_PARAMS}


class RandParamsMixin:
    """Mixin for a Gymnasium MuJoCo env: scales physical parameters after loading the model.

    Constructor keywords ``<field>_scale`` (``body_mass_scale`` ...) take multiplier arrays of
    the field's shape; ``None`` keeps the nominal value.
    """

    def __init__(
        self,
        body_mass_scale: Any = None,
        body_inertia_scale: Any = None,
        dof_damping_scale: Any = None,
        geom_friction_scale: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        model: mujoco.MjModel = self.model  # type: ignore[attr-defined]
        self._nominal = {field: _field_view(model, field).copy() for field in RAND_PARAMS}
        self.set_task(body_mass_scale, body_inertia_scale, dof_damping_scale, geom_friction_scale)
        record_init_args(self, **self._scales, **kwargs)

    def set_task(
        self,
        body_mass_scale: Any = None,
        body_inertia_scale: Any = None,
        dof_damping_scale: Any = None,
        geom_friction_scale: Any = None,
    ) -> None:
        """Rescale the nominal model by new multipliers (the sampler reuses envs this way)."""
        model: mujoco.MjModel = self.model  # type: ignore[attr-defined]
        given = {
            "body_mass": body_mass_scale,
            "body_inertia": body_inertia_scale,
            "dof_damping": dof_damping_scale,
            "geom_friction": geom_friction_scale,
        }
        scales = {}
        for field, scale in given.items():
            nominal = self._nominal[field]
            if scale is None:
                scales[field] = np.ones(nominal.shape)
                continue
            scale = np.asarray(scale, dtype=np.float64)
            if scale.shape != nominal.shape:
                raise ValueError(
                    f"{field}_scale must have shape {nominal.shape} for this robot, "
                    f"got {scale.shape}"
                )
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                raise ValueError(f"{field}_scale must be finite and > 0")
            scales[field] = scale
        for field, scale in scales.items():
            _field_view(model, field)[:] = self._nominal[field] * scale
        mujoco.mj_setConst(model, self.data)  # type: ignore[attr-defined]
        self._scales = {f"{f}_scale": given[f] for f in RAND_PARAMS}
        update_init_args(self, **self._scales)


class HalfCheetahRandParamsEnv(RandParamsMixin, CachedModel, SummedReward, HalfCheetahEnv):
    """Gymnasium HalfCheetah-v5 with scaled mass, inertia, damping and friction."""

    vector_step = HalfCheetahStep  # the model differs, the step does not


class HopperRandParamsEnv(RandParamsMixin, CachedModel, SummedReward, HopperEnv):
    """Gymnasium Hopper-v5 with scaled mass, inertia, damping and friction."""

    vector_step = HopperStep  # the model differs, the step does not


class Walker2dRandParamsEnv(RandParamsMixin, CachedModel, SummedReward, Walker2dEnv):
    """Gymnasium Walker2d-v5 with scaled mass, inertia, damping and friction."""

    vector_step = Walker2dStep  # the model differs, the step does not


class _RandParamsFamily(TaskFamily):
    """Shared family logic: one multiplier Parameter per randomised field.

    Args:
        log_scale_limit: exponents are drawn from ``U(-limit, limit)``.
        rand_params: which of ``body_mass``, ``body_inertia``, ``dof_damping``,
            ``geom_friction`` to randomise (the others stay nominal).
        horizon: override the episode length (200).
    """

    horizon = HORIZON
    env_class: ClassVar[type[MujocoEnv]]
    xml_file: ClassVar[str]

    def __init__(
        self,
        *,
        log_scale_limit: float = 3.0,
        rand_params: Sequence[str] = RAND_PARAMS,
        horizon: int | None = None,
    ) -> None:
        if not (isinstance(log_scale_limit, (int, float)) and 0 < log_scale_limit < 20):
            raise ValueError(
                f"log_scale_limit must be a number in (0, 20), got {log_scale_limit!r}"
            )
        if isinstance(rand_params, str):
            rand_params = (rand_params,)
        unknown = sorted(set(rand_params) - set(RAND_PARAMS))
        if unknown or not rand_params:
            raise ValueError(
                f"rand_params must be a non-empty subset of {list(RAND_PARAMS)}, got "
                f"{list(rand_params)}"
            )
        self.log_scale_limit = float(log_scale_limit)
        self.rand_params = tuple(f for f in RAND_PARAMS if f in rand_params)
        shapes = scale_shapes(compile_model(expand_model_path(self.xml_file)))
        self.parameters = tuple(
            Parameter(
                f"{field}_scale",
                _DESCRIPTION[field],
                LogUniform(SCALE_BASE[field], -self.log_scale_limit, self.log_scale_limit),
                default=np.ones(shapes[field]),
                shape=shapes[field],
            )
            for field in self.rand_params
        )
        super().__init__(horizon=horizon)


class HalfCheetahRandParamsFamily(_RandParamsFamily):
    """HalfCheetah with mass, inertia, damping and friction scaled per element
    (rand_param_envs convention). Standard HalfCheetah-v5 reward, horizon 200."""

    env_class = HalfCheetahRandParamsEnv
    xml_file = "half_cheetah.xml"


class HopperRandParamsFamily(_RandParamsFamily):
    """Hopper with mass, inertia, damping and friction scaled per element
    (rand_param_envs convention). Standard Hopper-v5 reward and termination, horizon 200."""

    env_class = HopperRandParamsEnv
    xml_file = "hopper.xml"


class Walker2dRandParamsFamily(_RandParamsFamily):
    """Walker2d with mass, inertia, damping and friction scaled per element
    (rand_param_envs convention). Standard Walker2d-v5 reward and termination, horizon 200."""

    env_class = Walker2dRandParamsEnv
    xml_file = "walker2d_v5.xml"
