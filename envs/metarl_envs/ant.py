"""Ant families, on Gymnasium's ``Ant-v5`` (horizon 200).

Dynamics, reset noise, frame skip, healthy range (torso z in [0.2, 1.0], else the episode
terminates) and observation are Gymnasium's v5 Ant: joint positions without x, y, velocities
and clipped external contact forces (105-D). Velocity is the torso's x displacement over one
env step, as in Gymnasium.

MAML families (Finn et al. 2017; reward as in the authors' ``maml_rl`` ``ant_env_rand*.py``):
control cost ``0.005 |a|^2``, contact cost ``0.0005 |clip(cfrc_ext, -1, 1)|^2``, survive
bonus ``0.05``, plus the task term ``reward_forward`` (``reward_goal`` for AntGoal):

- ``AntVel-v0``: target velocity ``v* ~ U(0, 3)``; task term ``-|v - v*| + 1``.
- ``AntDir-v0``: direction ``d in {-1, +1}``; task term ``d * v``.
- ``AntGoal-v0``: goal uniform in the disk of radius 3 (the ProMP/PEARL distribution; the
  MAML code drew from the square ``[-3, 3]^2``); task term ``-|xy - goal|_1 + 4``. The
  observation also holds the torso's x, y (107-D): the reward depends on them.

- ``AntVel-v1``, ``AntDir-v1``: the same tasks at the MAML paper's time step. The authors'
  rllab Ant steps its 0.02 s physics once per action (an episode is 4 s of simulated time);
  Gymnasium's v5 steps 0.01 s five times (0.05 s, 10 s). v1 keeps everything of v0 but takes
  ``frame_skip=2`` (0.02 s), as HalfCheetah's v1 does (where the time step is what separates
  the paper's numbers from v0's, experiments/RESULTS.md). Departures that remain: the
  observation (rllab: all of qpos and qvel, the clipped contact forces, the torso's rotation
  matrix and centre of mass), the integrator (rllab's model: RK4; Gymnasium's: Euler),
  velocity (rllab: the torso's centre-of-mass velocity; here the x displacement over the
  step) and the MuJoCo version (1.31 against 3.x).

``AntCrippledLeg-v0`` (Nagabandi, Clavera et al. 2019, "Learning to adapt in dynamic,
real-world environments"; ``learning_to_adapt`` ``ant_env.py``): the actuators of one leg are
disabled (their commands are zeroed, so they also cost nothing), and the leg is drawn red.
Training legs {0, 1, 2} as in the source; out-of-distribution: the held-out leg 3 and every
pair of legs. Leg k is the one driven by joints ``hip_{k+1}`` and ``ankle_{k+1}``
(with +x forward: 0 front-left, 1 back-left, 2 back-right, 3 front-right; Gymnasium's
bodies ``front_left_leg``, ``front_right_leg``, ``back_leg``, ``right_back_leg``). Unlike the
source, the leg keeps its shape (the source also shrank it). Reward: Gymnasium's standard
Ant-v5 reward.

Version history: v0, first release; v1 of AntVel and AntDir (2026-12-06), the paper's
time step (``frame_skip`` 2 instead of Gymnasium's 5).
"""

from __future__ import annotations

import abc
import itertools
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from metarl.distributions import Choice, Disk, Uniform
from metarl.family import TaskFamily
from metarl.task import Parameter
from metarl_envs._mujoco import (
    CachedModel,
    FrameSkip,
    SummedReward,
    finite_float,
    goal_array,
    record_init_args,
    summed,
    update_init_args,
)
from metarl_envs._vector import AntStep

HORIZON = 200
#: MAML Ant cost weights (0.5 * 1e-2, 0.5 * 1e-3) and survive bonus.
MAML_CTRL_COST_WEIGHT = 0.005
MAML_CONTACT_COST_WEIGHT = 5e-4
MAML_SURVIVE_REWARD = 0.05
NUM_LEGS = 4
#: Physics steps per action at the MAML paper's time step: the authors' rllab ``ant.xml``
#: steps 0.02 s once per action; Gymnasium's Ant-v5 has a 0.01 s time step (and 5 per action).
MAML_FRAME_SKIP = 2
CRIPPLED_COLOR = np.array([1.0, 0.0, 0.0, 1.0])


class _MAMLAntEnv(CachedModel, AntEnv, abc.ABC):
    """Ant-v5 with the MAML cost weights; subclasses give the task term."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("ctrl_cost_weight", MAML_CTRL_COST_WEIGHT)
        kwargs.setdefault("contact_cost_weight", MAML_CONTACT_COST_WEIGHT)
        kwargs.setdefault("healthy_reward", MAML_SURVIVE_REWARD)
        super().__init__(**kwargs)

    @abc.abstractmethod
    def _task_terms(self, x_velocity: float) -> dict[str, float]:
        """The task's reward term(s), given the torso's x velocity."""

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        return summed(
            {
                **self._task_terms(x_velocity),
                "reward_ctrl": -self.control_cost(action),
                "reward_contact": -self.contact_cost,
                "reward_survive": self.healthy_reward,
            }
        )


class AntVelStep(AntStep):
    """:class:`AntVelEnv`'s step for a batch of envs (the sampler's fast path)."""

    same_model = True  # the task changes the reward only
    task_attributes = ("velocity",)

    def terms(self, rows: Any, x_velocity: Any, costs: Any, survive: Any, after: Any) -> list:
        return [-np.abs(x_velocity - self.velocity[rows]) + 1.0, *costs, survive]


class AntDirStep(AntStep):
    """:class:`AntDirEnv`'s step for a batch of envs (the sampler's fast path)."""

    same_model = True  # the task changes the reward only
    task_attributes = ("direction",)

    def terms(self, rows: Any, x_velocity: Any, costs: Any, survive: Any, after: Any) -> list:
        return [self.direction[rows] * x_velocity, *costs, survive]


class AntGoalStep(AntStep):
    """:class:`AntGoalEnv`'s step for a batch of envs (the sampler's fast path)."""

    same_model = True  # the task changes the reward only
    task_attributes = ("goal",)

    def terms(self, rows: Any, x_velocity: Any, costs: Any, survive: Any, after: Any) -> list:
        xy = after["qpos"][:, :2]
        return [-np.sum(np.abs(xy - self.goal[rows]), axis=1) + 4.0, *costs, survive]


class AntCrippledLegStep(AntStep):
    """:class:`AntCrippledLegEnv`'s step for a batch of envs (the sampler's fast path).
    (Its models differ only in colours, but ``same_model`` stays False: the envs' own.)"""

    task_attributes = ("_action_mask",)

    def controls(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.asarray(actions) * self._action_mask[rows]


class AntVelEnv(_MAMLAntEnv):
    """Ant rewarded for running forward at ``velocity`` (m/s)."""

    vector_step = AntVelStep

    def __init__(self, velocity: float = 1.5, **kwargs: Any) -> None:
        self.set_task(velocity)
        super().__init__(**kwargs)
        record_init_args(self, velocity=velocity, **kwargs)

    def set_task(self, velocity: float) -> None:
        """Switch to another target velocity (the sampler reuses envs this way)."""
        self.velocity = finite_float("velocity", velocity)
        update_init_args(self, velocity=velocity)

    def _task_terms(self, x_velocity: float) -> dict[str, float]:
        return {"reward_forward": -abs(x_velocity - self.velocity) + 1.0}


class AntDirEnv(_MAMLAntEnv):
    """Ant rewarded for running in ``direction`` along x (+1 forward, -1 backward)."""

    vector_step = AntDirStep

    def __init__(self, direction: float = 1.0, **kwargs: Any) -> None:
        self.set_task(direction)
        super().__init__(**kwargs)
        record_init_args(self, direction=direction, **kwargs)

    def set_task(self, direction: float) -> None:
        """Switch to another running direction (the sampler reuses envs this way)."""
        self.direction = finite_float("direction", direction)
        update_init_args(self, direction=direction)

    def _task_terms(self, x_velocity: float) -> dict[str, float]:
        return {"reward_forward": self.direction * x_velocity}


class AntGoalEnv(_MAMLAntEnv):
    """Ant rewarded for reaching ``goal`` (x, y) in the plane."""

    vector_step = AntGoalStep

    def __init__(self, goal: Any = (0.0, 0.0), **kwargs: Any) -> None:
        self.set_task(goal)
        kwargs.setdefault("exclude_current_positions_from_observation", False)
        super().__init__(**kwargs)
        record_init_args(self, goal=self.goal.tolist(), **kwargs)

    def set_task(self, goal: Any) -> None:
        """Switch to another goal (the sampler reuses envs this way)."""
        self.goal = goal_array(goal)
        update_init_args(self, goal=self.goal.tolist())

    def _task_terms(self, x_velocity: float) -> dict[str, float]:
        # The torso's free joint holds its world position. (``data.xpos`` would lag one
        # physics substep behind: MuJoCo computes kinematics before integrating.)
        xy = self.data.qpos[:2]
        return {"reward_goal": -float(np.sum(np.abs(xy - self.goal))) + 4.0}


class AntCrippledLegEnv(CachedModel, SummedReward, AntEnv):
    """Ant-v5 whose legs in ``crippled_legs`` (indices 0-3) have their actuators disabled."""

    vector_step = AntCrippledLegStep

    def __init__(self, crippled_legs: Any = (0,), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nominal_rgba = self.model.geom_rgba.copy()
        self.set_task(crippled_legs)
        record_init_args(self, crippled_legs=self.crippled_legs, **kwargs)

    def set_task(self, crippled_legs: Any) -> None:
        """Disable another set of legs (the sampler reuses envs this way)."""
        try:
            legs = tuple(sorted({int(leg) for leg in crippled_legs}))
        except (TypeError, ValueError):
            raise ValueError(
                f"crippled_legs must be a sequence of leg indices 0-3, got {crippled_legs!r}"
            ) from None
        if any(leg not in range(NUM_LEGS) for leg in legs):
            raise ValueError(f"crippled_legs must hold leg indices 0-3, got {crippled_legs!r}")
        self.crippled_legs = legs
        model = self.model
        joint_of_actuator = [model.joint(model.actuator_trnid[i, 0]).name for i in range(model.nu)]
        self._action_mask = np.ones(model.nu)
        model.geom_rgba[:] = self._nominal_rgba
        for leg in legs:
            joints = (f"hip_{leg + 1}", f"ankle_{leg + 1}")
            for name in joints:
                self._action_mask[joint_of_actuator.index(name)] = 0.0
                body = model.jnt_bodyid[model.joint(name).id]
                model.geom_rgba[model.geom_bodyid == body] = CRIPPLED_COLOR
        update_init_args(self, crippled_legs=legs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return super().step(np.asarray(action) * self._action_mask)


class AntVelFamily(FrameSkip):
    """Ant running forward at a target velocity U(0, 3) m/s (MAML).

    Task term -|v - v*| + 1, MAML costs, horizon 200, on Gymnasium Ant-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter("velocity", "target forward velocity (m/s)", Uniform(0.0, 3.0), default=1.5),
    )
    env_class = AntVelEnv


class AntDirFamily(FrameSkip):
    """Ant running forward (+1) or backward (-1) along x (MAML).

    Task term d * v, MAML costs, horizon 200, on Gymnasium Ant-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "direction", "running direction: +1 forward, -1 backward", Choice([-1, 1]), default=1
        ),
    )
    env_class = AntDirEnv


class AntVelV1Family(AntVelFamily):
    """AntVel at the MAML paper's time step: 0.02 s of physics per action.

    Task term -|v - v*| + 1, MAML costs, horizon 200 (4 s simulated), on Gymnasium Ant-v5
    with ``frame_skip=2``.
    """

    frame_skip = MAML_FRAME_SKIP


class AntDirV1Family(AntDirFamily):
    """AntDir at the MAML paper's time step: 0.02 s of physics per action.

    Task term d * v, MAML costs, horizon 200 (4 s simulated), on Gymnasium Ant-v5 with
    ``frame_skip=2``.
    """

    frame_skip = MAML_FRAME_SKIP


class AntGoalFamily(TaskFamily):
    """Ant walking to a goal uniform in the disk of radius 3 (MAML reward, ProMP/PEARL goals).

    Task term -|xy - goal|_1 + 4, MAML costs, horizon 200, on Gymnasium Ant-v5.
    """

    horizon = HORIZON
    parameters = (
        Parameter("goal", "goal position (x, y)", Disk(3.0), default=(1.0, 1.0), shape=(2,)),
    )
    env_class = AntGoalEnv


class AntCrippledLegFamily(TaskFamily):
    """Ant with one leg's actuators disabled: legs {0, 1, 2} in training (Nagabandi et al. 2019);
    OOD: held-out leg 3 and every pair of legs.

    Standard Ant-v5 reward, horizon 200.
    """

    horizon = HORIZON
    parameters = (
        Parameter(
            "crippled_legs",
            "indices of the legs whose actuators are disabled "
            "(0 front-left, 1 back-left, 2 back-right, 3 front-right)",
            Choice([(0,), (1,), (2,)]),
            default=(0,),
            ood=Choice([(3,), *itertools.combinations(range(NUM_LEGS), 2)]),
        ),
    )
    env_class = AntCrippledLegEnv
