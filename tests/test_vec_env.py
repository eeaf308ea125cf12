"""FamilyVecEnv: a Stable-Baselines3 VecEnv over the sampler's stepping. Bit-identical to each
env's own step (auto-resets, new tasks, early termination, the four ways of stepping),
the guard's rules, observed tasks, seeding, and SB3 training on it."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecMonitor

import metarl
from metarl import seeds
from tests.sampler_families import FlakyFamily


def _reference_streams(seed: int, i: int, family: metarl.TaskFamily, episodes: int):
    """Env i's tasks and reset seeds, as metarl.seeds defines them."""
    rng = np.random.default_rng(seeds.vec_env_tasks(seed, i))
    tasks = [family.sample_task(rng) for _ in range(episodes)]
    return tasks, [seeds.vec_env_reset(seed, i, e) for e in range(episodes)]


def _run(env: metarl.FamilyVecEnv, actions: np.ndarray):
    trace = [env.reset()]
    for a in actions:
        trace.append(env.step(a))
    return trace


@pytest.mark.parametrize(
    ("family_id", "threads", "vectorized"),
    [
        ("HalfCheetahCrippledJoint-v0", 2, None),  # MuJoCo's batch, models differ per task
        ("HopperRandParams-v0", 0, None),  # falls: envs reset at different steps
        ("AntCrippledLeg-v0", 2, None),  # threads over each env's own MjData
        ("Navigation2D-v0", 0, None),  # pure NumPy: its ArrayStep, every env in one call
        ("Navigation2D-v0", 0, False),  # not vectorized: the envs' own step
    ],
)
def test_steps_equal_each_envs_own_step_with_a_new_task_every_episode(
    family_id, threads, vectorized
):
    family = metarl.make_family(family_id, horizon=15)
    n, steps, seed = 3, 50, 7
    env = metarl.FamilyVecEnv(family, n, seed=seed, num_threads=threads, vectorized=vectorized)
    assert env._slots.vectorized is (vectorized is None)
    space = env.action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.2 * space.high, 1.2 * space.high, (steps, n, space.shape[0]))
    trace = _run(env, actions.astype(np.float32))
    env.close()
    for i in range(n):
        tasks, reset_seeds = _reference_streams(seed, i, family, episodes=steps + 1)
        e = 0
        ref = family.make_env(tasks[e])
        obs, _ = ref.reset(seed=reset_seeds[e])
        np.testing.assert_array_equal(trace[0][i], obs)
        for t in range(steps):
            got_obs, got_rew, got_done, got_info = (x[i] for x in trace[t + 1])
            assert got_info["task"] == tasks[e]
            obs, reward, terminated, truncated, info = ref.step(actions[t, i].astype(np.float32))
            assert got_rew == np.float32(reward)
            assert got_done == (terminated or truncated)
            assert got_info["sim_unstable"] == info["sim_unstable"]
            assert got_info["TimeLimit.truncated"] == (truncated and not terminated)
            if got_done:
                np.testing.assert_array_equal(got_info["terminal_observation"], obs)
                e += 1
                ref = family.make_env(tasks[e])
                obs, _ = ref.reset(seed=reset_seeds[e])
            np.testing.assert_array_equal(got_obs, obs)
        assert e >= 3  # several episodes, so several retasks and resets


def test_fixed_tasks_observed_tasks_and_seeding():
    family = metarl.make_family("HalfCheetahReversedJoints-v0", horizon=5)
    tasks = [family.make_task(reversed_joints=[j]) for j in (1, 3)]
    env = metarl.FamilyVecEnv(family, tasks=tasks, observe_task=True, seed=3)
    assert env.num_envs == 2 and env.observation_space.shape == (17 + 6,)
    obs = env.reset()
    np.testing.assert_array_equal(obs[1, 17:], [1, 1, 1, -1, 1, 1])
    assert [info["task"] for info in env.reset_infos] == tasks
    zero = np.zeros((2, 6), dtype=np.float32)
    for _ in range(5):
        obs, _, dones, infos = env.step(zero)
    assert dones.all() and [info["task"] for info in infos] == tasks  # the same tasks again
    np.testing.assert_array_equal(infos[0]["terminal_observation"][17:], [1, -1, 1, 1, 1, 1])
    assert env.env_is_wrapped(Monitor) == [False, False]
    assert env.get_attr("reversed_joints") == [(1,), (3,)]
    # the same seed gives the same episodes; a reset continues the streams
    again = metarl.FamilyVecEnv(family, tasks=tasks[:1] * 2, observe_task=True, seed=3)
    assert again.tasks == [tasks[0], tasks[0]]
    first = again.reset()
    assert not np.array_equal(first, again.reset())
    again.seed(3)
    np.testing.assert_array_equal(again.reset(), first)
    env.close()
    again.close()


def test_the_guards_rules_hold():
    """A blown-up step ends the episode with reward 0 and a finite observation, flagged; a
    non-finite action is refused."""
    family = FlakyFamily()
    task = family.make_task(blow_at=2)
    env = metarl.FamilyVecEnv(family, tasks=[task, family.default_task()], seed=0)
    env.reset()
    one = np.ones((2, 1), dtype=np.float32)
    for _ in range(2):
        _, _, dones, _ = env.step(one)
        assert not dones.any()
    obs, rewards, dones, infos = env.step(one)
    assert dones.tolist() == [True, False]
    assert infos[0]["sim_unstable"] and rewards[0] == 0.0
    assert np.isfinite(infos[0]["terminal_observation"]).all() and np.isfinite(obs).all()
    with pytest.raises(ValueError, match="non-finite action"):
        env.step(np.array([[np.nan], [0.0]], dtype=np.float32))
    env.close()


def test_bad_arguments_are_named():
    family = metarl.make_family("HalfCheetahCrippledJoint-v0")
    with pytest.raises(ValueError, match="give num_envs"):
        metarl.FamilyVecEnv(family)
    with pytest.raises(ValueError, match="num_envs must be an int >= 1"):
        metarl.FamilyVecEnv(family, 0)
    with pytest.raises(ValueError, match="3 tasks for 2 envs"):
        metarl.FamilyVecEnv(family, 2, tasks=family.test_tasks(3))
    with pytest.raises(ValueError, match="belongs to family HalfCheetahVel-v0"):
        metarl.FamilyVecEnv(family, 1, tasks=metarl.make_family("HalfCheetahVel-v0").test_tasks(1))
    with pytest.raises(ValueError, match="cannot be vectorized"):
        metarl.FamilyVecEnv(FlakyFamily(), 2, vectorized=True)
    env = metarl.FamilyVecEnv(family, 2)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros((2, 6), dtype=np.float32))
    env.reset()
    with pytest.raises(ValueError, match=r"actions of shape \(6,\) for 2 envs; expected \(2, 6\)"):
        env.step(np.zeros(6, dtype=np.float32))
    with pytest.raises(ValueError, match="actions must be numbers"):
        env.step([["a"] * 6] * 2)
    env.close()


def test_sb3_ppo_learns_on_it():
    """SB3's PPO trains on the VecEnv unchanged, and learns: Navigation2D goals drawn anew
    every episode, the goal observed (an oracle), so one policy can reach every goal."""
    env = VecMonitor(metarl.FamilyVecEnv("Navigation2D-v0", 8, observe_task=True, seed=0))
    model = PPO("MlpPolicy", env, n_steps=200, batch_size=400, learning_rate=3e-3, seed=0)

    def mean_return(n_episodes: int = 40) -> float:
        returns, obs = [], env.reset()
        totals = np.zeros(env.num_envs)
        while len(returns) < n_episodes:
            action, _ = model.predict(obs, deterministic=True)
            obs, rewards, dones, _ = env.step(action)
            totals += rewards
            returns += totals[dones].tolist()
            totals[dones] = 0.0
        return float(np.mean(returns))

    before = mean_return()
    model.learn(8_000)
    after = mean_return()
    env.close()
    assert after > before + 15.0, (before, after)  # measured: -41 -> -8


def test_sb3_sac_trains_on_it_and_sees_time_limits():
    """An off-policy learner trains on it unchanged too: SAC's replay buffer tells the
    horizon's truncations (timeouts, bootstrapped from ``terminal_observation``) from
    reaching the goal (a terminal state), from ``TimeLimit.truncated``."""
    from stable_baselines3 import SAC

    env = metarl.FamilyVecEnv("Navigation2D-v0", 2, seed=0)
    model = SAC("MlpPolicy", env, learning_starts=50, buffer_size=1_000, batch_size=32, seed=0)
    model.learn(250)
    buffer = model.replay_buffer
    assert buffer.pos == 125  # 250 env steps over 2 envs
    ends = buffer.dones[: buffer.pos]
    # Measured for this seed: env 1 reached its goal at step 48; env 0 ran to the horizon.
    np.testing.assert_array_equal(np.argwhere(ends), [[47, 1], [99, 0]])
    np.testing.assert_array_equal(np.argwhere(buffer.timeouts[: buffer.pos]), [[99, 0]])
    # What is stored as the next observation at an episode's end is its last, not the reset.
    for row, i in np.argwhere(ends):
        assert not np.allclose(buffer.next_observations[row, i], buffer.observations[row + 1, i])
    env.close()
