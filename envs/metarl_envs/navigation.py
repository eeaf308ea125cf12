"""Navigation2D: a point agent walks to a goal in the plane (pure NumPy, very fast).

Source: the 2-D navigation tasks of Finn et al. 2017 (MAML), Section 5.3, as in the
authors' ``maml_rl`` code. It is the family every algorithm test uses.

- Task: goal position, uniform on ``[-0.5, 0.5]^2``.
- Observation: the agent's position (2,), starting at the origin.
- Action: a velocity command, clipped to ``[-0.1, 0.1]^2``; the agent moves by it.
- Reward: minus the Euclidean distance to the goal after the move (the paper's text says
  squared distance; its code, and this family, use the distance). Term: ``reward_distance``.
- Termination: within 0.01 of the goal in each coordinate. Horizon: 100.

``Navigation2D-v1``: the same task with the action normalized as the authors' code has it
(their env is wrapped in rllab's ``normalize``): the action space is ``[-1, 1]^2`` and the
agent moves by ``0.1 * clip(a, -1, 1)``. The policy then acts, explores (a Gaussian of std
1 is one maximum step, not ten) and takes its inner gradient step in that normalized space,
which is what the paper's step size of 0.5 and its numbers belong to (experiments/RESULTS.md,
issue 17). v0 acts in ``[-0.1, 0.1]^2`` directly.

The sampler steps every env at once, in its own process (:class:`Navigation2DStep`, an
:class:`~metarl.array_step.ArrayStep`): the env's ``step`` and the batch's both call
:func:`move`, so they agree to the bit.

Version history: v0, first release; v1 (2026-12-06), the action normalized to ``[-1, 1]^2``
as in the authors' code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from metarl.array_step import ArrayStep
from metarl.distributions import Uniform
from metarl.family import TaskFamily
from metarl.task import Parameter
from metarl_envs._mujoco import goal_array

GOAL_TOLERANCE = 0.01
MAX_SPEED = 0.1


def move(
    position: np.ndarray, goal: np.ndarray, action: np.ndarray, normalized: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of the agent, for one env (``[2]`` arrays) or many (``[m, 2]``): the
    position after moving by ``action`` (float64, clipped to the maximum speed; if
    ``normalized``, first clipped to ``[-1, 1]`` and scaled by the maximum speed), the
    distance to the goal from there, and whether the goal is reached."""
    step = np.asarray(action, dtype=np.float64)
    if normalized:
        step = MAX_SPEED * np.clip(step, -1.0, 1.0)
    position = position + np.clip(step, -MAX_SPEED, MAX_SPEED)
    offset = position - goal
    distance = np.sqrt(np.sum(offset**2, axis=-1))
    reached = np.all(np.abs(offset) < GOAL_TOLERANCE, axis=-1)
    return position, distance, reached


class Navigation2DStep(ArrayStep):
    """:meth:`Navigation2DEnv.step` for many envs at once, through the same :func:`move`."""

    state = ("_position",)
    task_attributes = ("goal",)
    goal: np.ndarray  # [n, 2], each env's goal (read by ArrayStep from task_attributes)
    #: Whether actions are in ``[-1, 1]`` (v1) rather than in ``[-0.1, 0.1]`` (v0).
    normalized: ClassVar[bool] = False

    def step(
        self, rows: np.ndarray, state: Mapping[str, np.ndarray], actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        position, distance, reached = move(
            state["_position"], self.goal[rows], actions, self.normalized
        )
        return {"_position": position}, position.astype(np.float32), -distance, reached


class Navigation2DEnv(gym.Env):
    """Point agent in the plane moving towards ``goal``; see the module doc."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    vector_step: ClassVar[type[Navigation2DStep]] = Navigation2DStep
    #: Whether actions are in ``[-1, 1]`` (v1) rather than in ``[-0.1, 0.1]`` (v0).
    normalized: ClassVar[bool] = False

    def __init__(self, goal: Any = (0.0, 0.0)) -> None:
        self.set_task(goal)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        bound = 1.0 if self.normalized else MAX_SPEED
        self.action_space = gym.spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)
        self._position = np.zeros(2, dtype=np.float64)

    def set_task(self, goal: Any) -> None:
        """Switch to another goal (the sampler reuses envs this way)."""
        self.goal = goal_array(goal)

    def _obs(self) -> np.ndarray:
        return self._position.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._position = np.zeros(2, dtype=np.float64)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._position, distance, reached = move(self._position, self.goal, action, self.normalized)
        reward = -float(distance)
        info = {"reward_distance": reward, "distance": float(distance)}
        return self._obs(), reward, bool(reached), False, info


class Navigation2DV1Step(Navigation2DStep):
    """:class:`Navigation2DV1Env`'s step for many envs at once."""

    normalized = True


class Navigation2DV1Env(Navigation2DEnv):
    """:class:`Navigation2DEnv` with actions in ``[-1, 1]^2``, scaled by the maximum speed."""

    vector_step = Navigation2DV1Step
    normalized = True


class Navigation2DFamily(TaskFamily):
    """Point robot reaching a goal drawn uniformly from [-0.5, 0.5]^2 (MAML 2-D navigation).

    Reward: minus the distance to the goal; horizon 100. Pure NumPy, stepped vectorized in
    the sampler's process; used by every algorithm test.
    """

    horizon = 100
    parameters = (
        Parameter(
            "goal",
            "goal position (x, y)",
            Uniform(-0.5, 0.5),
            default=(0.25, 0.25),
            shape=(2,),
        ),
    )
    env_class = Navigation2DEnv


class Navigation2DV1Family(Navigation2DFamily):
    """Navigation2D with the action normalized to [-1, 1]^2 as in the MAML authors' code
    (the agent moves by 0.1 * clip(a, -1, 1)); otherwise as v0."""

    env_class = Navigation2DV1Env
