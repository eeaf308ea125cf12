"""Navigation2D-v0: a point agent walks to a goal in the plane (pure NumPy, very fast).

Source: the 2-D navigation tasks of Finn et al. 2017 (MAML), Section 5.3, as in the
authors' ``maml_rl`` code. It is the family every algorithm test uses.

- Task: goal position, uniform on ``[-0.5, 0.5]^2``.
- Observation: the agent's position (2,), starting at the origin.
- Action: a velocity command, clipped to ``[-0.1, 0.1]^2``; the agent moves by it.
- Reward: minus the Euclidean distance to the goal after the move (the paper's text says
  squared distance; its code, and this family, use the distance). Term: ``reward_distance``.
- Termination: within 0.01 of the goal in each coordinate. Horizon: 100.

Version history: v0, first release.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from metarl.distributions import Uniform
from metarl.family import TaskFamily
from metarl.task import Parameter
from metarl_envs._mujoco import goal_array

GOAL_TOLERANCE = 0.01
MAX_SPEED = 0.1


class Navigation2DEnv(gym.Env):
    """Point agent in the plane moving towards ``goal``; see the module doc."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, goal: Any = (0.0, 0.0)) -> None:
        self.set_task(goal)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-MAX_SPEED, MAX_SPEED, shape=(2,), dtype=np.float32)
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
        action = np.clip(np.asarray(action, dtype=np.float64), -MAX_SPEED, MAX_SPEED)
        self._position = self._position + action
        offset = self._position - self.goal
        distance = float(np.sqrt(np.sum(offset**2)))
        terminated = bool(np.all(np.abs(offset) < GOAL_TOLERANCE))
        info = {"reward_distance": -distance, "distance": distance}
        return self._obs(), -distance, terminated, False, info


class Navigation2DFamily(TaskFamily):
    """Point robot reaching a goal drawn uniformly from [-0.5, 0.5]^2 (MAML 2-D navigation).

    Reward: minus the distance to the goal; horizon 100. Pure NumPy, used by every
    algorithm test.
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
