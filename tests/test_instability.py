"""The guard's rule (metarl.instability): one implementation, the same for one env stepped by
hand (TaskGuard) and for the sampler's batch (EnvSlots)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import metarl
from metarl.instability import finite_rows, guard_steps
from metarl.sampling.env_slots import EnvSlots


def test_the_rule_on_a_batch():
    nan, inf = float("nan"), float("inf")
    obs = np.array([[1.0, 2.0], [nan, 0.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    last = np.arange(10.0).reshape(5, 2)
    out = guard_steps(
        obs,
        last,
        rewards=np.array([1.0, 1.0, inf, 1.0, 1.0]),
        terminated=np.array([False, False, False, False, True]),
        physics_unstable=np.array([False, False, False, True, False]),
        term_sums=np.array([1.0, 1.0, 1.0, 1.0, nan]),
    )
    assert out.unstable.tolist() == [False, True, True, True, True]
    assert out.terminated.tolist() == [False, True, True, True, True]
    assert out.rewards.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert out.obs_replaced.tolist() == [False, True, False, False, False]
    np.testing.assert_array_equal(out.obs, [[1, 2], [2, 3], [3, 4], [5, 6], [7, 8]])
    assert np.isnan(obs[1, 0])  # the inputs are left as they were
    assert finite_rows(np.zeros((0, 3))).shape == (0,)
    with np.errstate(over="ignore"):  # finite values whose sum overflows count as blown up
        assert finite_rows(np.array([[1e308, 1e308]])).tolist() == [False]


class _NanTermEnv(gym.Env):
    """A finite reward, but a NaN reward term on its second step."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, x: float = 0.0) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        term = float("nan") if self.t == 2 else 1.0
        return np.full(1, float(self.t)), 1.0, False, False, {"reward_x": term}


class _NanTermFamily(metarl.TaskFamily):
    """A plain env whose reward terms can go non-finite alone."""

    horizon = 5
    parameters = (metarl.Parameter("x", "unused", metarl.Uniform(0, 1), 0.0),)
    env_class = _NanTermEnv


def test_a_non_finite_reward_term_ends_the_episode_by_hand_and_in_the_sampler():
    family = _NanTermFamily()
    task = family.default_task()
    env = family.make_env(task)
    env.reset(seed=0)
    by_hand = [env.step(np.zeros(1, np.float32)) for _ in range(2)]
    assert [info["sim_unstable"] for *_, info in by_hand] == [False, True]
    assert by_hand[1][1] == 0.0 and by_hand[1][2] is True

    slots = EnvSlots(family, obs_dim=1, act_dim=1)
    slots.reset([task], [0])
    steps = [slots.step(np.zeros((1, 1))) for _ in range(2)]
    slots.close()
    for (obs, reward, terminated, _, info), (s_obs, s_rew, s_term, _, s_unstable) in zip(
        by_hand, steps, strict=True
    ):
        assert s_obs[0].tolist() == np.asarray(obs).tolist()
        assert (s_rew[0], bool(s_term[0]), bool(s_unstable[0])) == (
            reward,
            terminated,
            info["sim_unstable"],
        )
