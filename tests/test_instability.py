"""The guard's rule (metarl.instability): one implementation, the same for one env stepped by
hand (TaskGuard) and for the sampler's batch (EnvSlots)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import metarl
from metarl.instability import finite_rows, guard_steps
from metarl.sampling.env_slots import EnvSlots


def test_the_rule_on_a_batch():
    nan, inf = float("nan"), float("inf")
    obs = np.array([[1.0, 2.0], [nan, 0.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [1e39, 0.0]])
    last = np.arange(12.0).reshape(6, 2)
    out = guard_steps(
        obs,
        last,
        rewards=np.array([1.0, 1.0, inf, 1.0, 1.0, 1.0]),
        terminated=np.array([False, False, False, False, True, False]),
        physics_unstable=np.array([False, False, False, True, False, False]),
        term_sums=np.array([1.0, 1.0, 1.0, 1.0, nan, 1.0]),
    )
    assert out.unstable.tolist() == [False, True, True, True, True, True]
    assert out.terminated.tolist() == [False, True, True, True, True, True]
    assert out.rewards.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    # 1e39 is finite as float64, but not as the batch's float32
    assert out.obs_replaced.tolist() == [False, True, False, False, False, True]
    np.testing.assert_array_equal(out.obs, [[1, 2], [2, 3], [3, 4], [5, 6], [7, 8], [10, 11]])
    assert np.isnan(obs[1, 0])  # the inputs are left as they were
    # a reward at float32's edge is stored; reward terms summing past it are not
    edge = guard_steps(obs[:1], last[:1], np.array([3.4e38]), np.array([False]),
                       np.array([False]), np.array([3.5e38]))  # fmt: skip
    assert edge.unstable.tolist() == [True] and edge.obs_replaced.tolist() == [False]
    assert finite_rows(np.zeros((0, 3))).shape == (0,)
    with np.errstate(over="ignore"):  # finite values whose sum overflows count as blown up
        assert finite_rows(np.array([[1e308, 1e308]])).tolist() == [False]


class _BadStepEnv(gym.Env):
    """Finite values but one, on its second step: a NaN reward term, or a reward or an
    observation of 1e39 (finite as float64, infinite as the batch's float32)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, bad: str = "term") -> None:
        self.bad, self.t = bad, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        second = self.t == 2
        term = float("nan") if second and self.bad == "term" else 1.0
        reward = 1e39 if second and self.bad == "reward" else 1.0
        obs = np.full(1, 1e39 if second and self.bad == "obs" else float(self.t))
        return obs, reward, False, False, {"reward_x": term}


class _BadStepFamily(metarl.TaskFamily):
    """A plain env whose reward terms, reward or observation can go bad alone."""

    horizon = 5
    parameters = (
        metarl.Parameter("bad", "what goes bad", metarl.Choice(["term", "reward", "obs"]), "term"),
    )
    env_class = _BadStepEnv


@pytest.mark.parametrize("bad", ["term", "reward", "obs"])
def test_a_value_the_batch_cannot_store_ends_the_episode_by_hand_and_in_the_sampler(bad):
    family = _BadStepFamily()
    task = family.make_task(bad=bad)
    env = family.make_env(task)
    env.reset(seed=0)
    by_hand = [env.step(np.zeros(1, np.float32)) for _ in range(2)]
    assert [info["sim_unstable"] for *_, info in by_hand] == [False, True]
    assert by_hand[1][1] == 0.0 and by_hand[1][2] is True
    assert np.all(np.isfinite(np.asarray(by_hand[1][0], dtype=np.float32)))

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
