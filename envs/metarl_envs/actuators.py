"""HalfCheetah robots whose motors differ from the nominal one: a crippled joint, a motor
wired backwards. On Gymnasium's ``HalfCheetah-v5`` (horizon 200).

The best gait differs between these robots, so no single policy serves them all: a joint
that is weak (or pushes the wrong way) must be used differently, and the others must make
up for it. That is what adapting in a few episodes is for.

Each task gives the six actuators (``bthigh, bshin, bfoot, fthigh, fshin, ffoot``, indices
0-5, Gymnasium's order) a gain: the command of actuator ``j`` is multiplied by ``g_j``
before it reaches the motor. The control cost is on the command the motor receives
(``0.05 |g * a|^2``), so a disabled joint costs nothing, as in the source. Reward:
Gymnasium's forward velocity (x displacement of the root over one env step) minus that
cost, the terms ``reward_forward`` and ``reward_ctrl``. Observation, dynamics and reset
noise: Gymnasium's v5 HalfCheetah (17-D).

- ``HalfCheetahCrippledJoint-v0``, after Nagabandi, Clavera et al. 2019 ("Learning to
  adapt in dynamic, real-world environments through meta-reinforcement learning",
  ``learning_to_adapt`` ``envs/half_cheetah_env.py``, task ``cripple``): one joint keeps only
  ``strength ~ U(0, 0.3)`` of its motor (0: disabled). Training joints 1-5, as in the source
  (``randint(1, 6)``: the back thigh, joint 0, is never crippled in training);
  out-of-distribution: the back thigh, and every pair of joints (the same strength for
  both). Departures from the source: the source only disables (strength 0); its
  observation adds the torso's centre of mass (20-D) and its reward uses the torso's
  centre-of-mass velocity, where this family keeps Gymnasium's v5 observation and
  velocity; horizon 200 (MAML's), not the source's 1000.
- ``HalfCheetahReversedJoints-v0`` (this package's): the motors of a random subset of the
  six joints are wired backwards (gain ``-1``: the command that used to extend the joint now
  flexes it). A policy that does not know which motors are reversed cannot use any of them:
  the training robots are closed under reversing every motor, so each motor is reversed on
  half of them. Since the control cost is symmetric, robot ``g``'s best policy is the nominal
  robot's with the reversed joints' commands negated: what adaptation must find is a sign
  per joint. Training: the 44 subsets of 0, 1, 2, 4, 5 or 6 motors, equally likely;
  out-of-distribution: the 20 subsets of exactly three, never seen in training.

The affected links are drawn red (crippled) or blue (reversed) in renders.

``family.task_features(task)`` is the six gains: what the oracle baseline observes.

Version history: v0, first release.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from metarl.distributions import Choice, Uniform
from metarl.family import TaskFamily
from metarl.task import Parameter, Task
from metarl_envs._mujoco import (
    CachedModel,
    SummedReward,
    finite_float,
    record_init_args,
    update_init_args,
)
from metarl_envs._vector import HalfCheetahStep

HORIZON = 200
#: Control-cost weight (the source's and MAML's ``0.5 * 1e-1``).
CTRL_COST_WEIGHT = 0.05
#: Gymnasium's HalfCheetah actuators, in order; each drives the joint of the same name.
JOINTS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
NUM_JOINTS = len(JOINTS)
#: Joints the training distributions use (the source never cripples the back thigh).
TRAINING_JOINTS = (1, 2, 3, 4, 5)
#: Out of distribution for the crippled joint: the held-out back thigh, and every pair.
OOD_JOINT_SETS = ((0,), *itertools.combinations(range(NUM_JOINTS), 2))
#: Reversed motors in training: every subset of 0, 1, 2, 4, 5 or 6 joints (closed under
#: reversing all six, so each motor is reversed on half of them); out of distribution, the
#: subsets of exactly three.
REVERSED_SETS = tuple(
    c for r in (0, 1, 2, 4, 5, 6) for c in itertools.combinations(range(NUM_JOINTS), r)
)
OOD_REVERSED_SETS = tuple(itertools.combinations(range(NUM_JOINTS), 3))
CRIPPLED_COLOR = np.array([1.0, 0.0, 0.0, 1.0])
REVERSED_COLOR = np.array([0.1, 0.3, 1.0, 1.0])


def joint_set(name: str, joints: Any, allow_empty: bool = False) -> tuple[int, ...]:
    """``joints`` as a sorted tuple of distinct actuator indices 0-5 (none only if
    ``allow_empty``), or a ``ValueError``."""
    try:
        out = tuple(sorted({int(j) for j in joints}))
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a sequence of joint indices 0-5, got {joints!r}"
        ) from None
    if (not out and not allow_empty) or any(j not in range(NUM_JOINTS) for j in out):
        raise ValueError(
            f"{name} must hold joint indices 0-5 ({', '.join(JOINTS)}), got {joints!r}"
        )
    return out


class ActuatorGainsStep(HalfCheetahStep):
    """:class:`ActuatorGainsHalfCheetahEnv`'s step for a batch of envs (the sampler's fast
    path). (The models differ only in colours, but ``same_model`` stays False: the envs'
    own.)"""

    task_attributes = ("actuator_gains",)

    def controls(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.asarray(actions) * self.actuator_gains[rows]


class ActuatorGainsHalfCheetahEnv(CachedModel, SummedReward, HalfCheetahEnv):
    """HalfCheetah-v5 whose actuator ``j`` receives ``actuator_gains[j]`` times its command;
    the subclasses say which gains a task sets (:meth:`gains`)."""

    vector_step: ClassVar[type | None] = None
    #: Colour of the links of joints whose gain is not 1.
    color: ClassVar[np.ndarray] = CRIPPLED_COLOR

    def __init__(self, ctrl_cost_weight: float = CTRL_COST_WEIGHT, **kwargs: Any) -> None:
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self._nominal_rgba = self.model.geom_rgba.copy()
        self._joint_geoms = [self.model.geom(name).id for name in JOINTS]

    def _set_gains(self, gains: np.ndarray) -> None:
        self.actuator_gains = gains
        self.model.geom_rgba[:] = self._nominal_rgba
        for j in np.flatnonzero(gains != 1.0):
            self.model.geom_rgba[self._joint_geoms[j]] = self.color

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return super().step(np.asarray(action) * self.actuator_gains)


class HalfCheetahCrippledJointEnv(ActuatorGainsHalfCheetahEnv):
    """HalfCheetah whose joints ``crippled_joints`` keep ``strength`` of their motor."""

    vector_step = ActuatorGainsStep
    color = CRIPPLED_COLOR

    def __init__(self, crippled_joints: Any = (1,), strength: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_task(crippled_joints, strength)
        record_init_args(
            self, crippled_joints=self.crippled_joints, strength=self.strength, **kwargs
        )

    def set_task(self, crippled_joints: Any, strength: float) -> None:
        """Cripple other joints (the sampler reuses envs this way)."""
        joints = joint_set("crippled_joints", crippled_joints)
        strength = finite_float("strength", strength)
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength!r}")
        self.crippled_joints, self.strength = joints, strength
        self._set_gains(crippled_gains(joints, strength))
        update_init_args(self, crippled_joints=joints, strength=strength)


class HalfCheetahReversedJointsEnv(ActuatorGainsHalfCheetahEnv):
    """HalfCheetah whose motors of ``reversed_joints`` are wired backwards."""

    vector_step = ActuatorGainsStep
    color = REVERSED_COLOR

    def __init__(self, reversed_joints: Any = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_task(reversed_joints)
        record_init_args(self, reversed_joints=self.reversed_joints, **kwargs)

    def set_task(self, reversed_joints: Any) -> None:
        """Reverse other motors (the sampler reuses envs this way)."""
        joints = joint_set("reversed_joints", reversed_joints, allow_empty=True)
        self.reversed_joints = joints
        self._set_gains(reversed_gains(joints))
        update_init_args(self, reversed_joints=joints)


def crippled_gains(joints: tuple[int, ...], strength: float) -> np.ndarray:
    """The six actuator gains of a robot whose ``joints`` keep ``strength``."""
    gains = np.ones(NUM_JOINTS)
    gains[list(joints)] = strength
    return gains


def reversed_gains(joints: tuple[int, ...]) -> np.ndarray:
    """The six actuator gains of a robot whose ``joints`` are wired backwards."""
    gains = np.ones(NUM_JOINTS)
    gains[list(joints)] = -1.0
    return gains


class HalfCheetahCrippledJointFamily(TaskFamily):
    """HalfCheetah with one crippled joint keeping U(0, 0.3) of its motor, joints 1-5 in
    training (Nagabandi et al. 2019); OOD: the back thigh (joint 0) and every pair of joints.

    Reward v - 0.05|g * a|^2, horizon 200, on Gymnasium HalfCheetah-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "crippled_joints",
            "indices of the crippled joints (0 bthigh, 1 bshin, 2 bfoot, 3 fthigh, 4 fshin, "
            "5 ffoot)",
            Choice([(j,) for j in TRAINING_JOINTS]),
            default=(1,),
            ood=Choice(OOD_JOINT_SETS),
        ),
        Parameter(
            "strength",
            "fraction of their motor's strength the crippled joints keep",
            Uniform(0.0, 0.3),
            default=0.0,
        ),
    )
    env_class = HalfCheetahCrippledJointEnv

    def task_features(self, task: Task) -> np.ndarray:
        """The six actuator gains (1 for a healthy joint)."""
        task = self._check_own(task)
        return crippled_gains(task.crippled_joints, task.strength).astype(np.float32)


class HalfCheetahReversedJointsFamily(TaskFamily):
    """HalfCheetah whose motors of a random subset of the six joints are wired backwards
    (0, 1, 2, 4, 5 or 6 of them; each motor reversed on half the robots); OOD: exactly three.

    Reward v - 0.05|a|^2, horizon 200, on Gymnasium HalfCheetah-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "reversed_joints",
            "indices of the joints whose motor is reversed (0 bthigh, 1 bshin, 2 bfoot, "
            "3 fthigh, 4 fshin, 5 ffoot)",
            Choice(REVERSED_SETS),
            default=(),
            ood=Choice(OOD_REVERSED_SETS),
        ),
    )
    env_class = HalfCheetahReversedJointsEnv

    def task_features(self, task: Task) -> np.ndarray:
        """The six actuator gains (1 for a normal motor, -1 for a reversed one)."""
        task = self._check_own(task)
        return reversed_gains(task.reversed_joints).astype(np.float32)
