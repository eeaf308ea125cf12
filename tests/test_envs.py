"""Every bundled family's env: checkers, determinism, reward terms, task effects, robustness."""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import metarl
from tests.conftest import BUNDLED_IDS, some_tasks

# Warnings the checkers may raise on our envs, each for a known, accepted reason:
ACCEPTED_WARNINGS = (
    # The family's env is wrapped (TimeLimit, TaskGuard): that is what users get.
    "is different from the unwrapped version",
    # Gymnasium's own MuJoCo envs declare unbounded observation spaces too.
    "observation space minimum value is -infinity",
    "observation space maximum value is infinity",
    # Navigation2D keeps MAML's action range [-0.1, 0.1] on purpose.
    "We recommend you to use a symmetric and normalized Box action space",
)

#: Families whose tasks change the physics (the rest change only the reward).
DYNAMICS_FAMILIES = {
    "AntCrippledLeg-v0",
    "HalfCheetahCrippledJoint-v0",
    "HalfCheetahReversedJoints-v0",
    "HalfCheetahRandParams-v0",
    "HopperRandParams-v0",
    "Walker2dRandParams-v0",
}


def _rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0, action=None):
    """Observations, rewards and infos of up to ``steps`` steps with seeded random actions
    (or always ``action`` if given), stopping at the end of the episode."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    space = env.action_space
    observations, rewards, infos = [obs], [], []
    for _ in range(steps):
        a = rng.uniform(space.low, space.high).astype(space.dtype) if action is None else action
        obs, reward, terminated, truncated, info = env.step(a)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), infos


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_env_passes_gymnasium_and_sb3_checkers(families, family_id):
    family = families[family_id]
    for task in some_tasks(family, 3):
        env = family.make_env(task)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gym_check_env(env, skip_render_check=True)
            gym_check_env(env.unwrapped, skip_render_check=True)
            sb3_check_env(env)
        unexpected = [
            str(w.message)
            for w in caught
            if not any(accepted in str(w.message) for accepted in ACCEPTED_WARNINGS)
        ]
        assert not unexpected, f"{family_id} {task}: {unexpected}"
        env.close()


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_seeded_reset_and_step_are_deterministic(families, family_id):
    family = families[family_id]
    task = some_tasks(family, 2)[-1]
    obs_a, rew_a, _ = _rollout(family.make_env(task), seed=7, steps=30)
    obs_b, rew_b, _ = _rollout(family.make_env(task), seed=7, steps=30)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    # Navigation2D starts at the origin: no reset noise.
    if not family_id.startswith("Navigation2D"):
        obs_c, _, _ = _rollout(family.make_env(task), seed=8, steps=1)
        assert not np.array_equal(obs_a[0], obs_c[0]), "reset seed has no effect"


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_reward_is_sum_of_info_terms_and_info_reports_task(families, family_id):
    family = families[family_id]
    for task in some_tasks(family, 2):
        env = family.make_env(task)
        _, info = env.reset(seed=0)
        assert info["task"] == task
        _, rewards, infos = _rollout(env, seed=0, steps=50)
        for reward, info in zip(rewards, infos, strict=True):
            terms = metarl.reward_terms(info)
            assert terms, "no reward_* terms in info"
            assert math.isclose(reward, sum(terms.values()), rel_tol=1e-12, abs_tol=1e-12)
            assert info["task"] == task
            assert info["sim_unstable"] is False


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_task_really_changes_the_env(families, family_id):
    family = families[family_id]
    task_a, task_b = some_tasks(family, 2)
    obs_a, rew_a, _ = _rollout(family.make_env(task_a), seed=3, steps=40)
    obs_b, rew_b, _ = _rollout(family.make_env(task_b), seed=3, steps=40)
    n = min(len(rew_a), len(rew_b))
    assert not np.allclose(rew_a[:n], rew_b[:n]), "the task does not change the rewards"
    if family_id in DYNAMICS_FAMILIES:
        m = min(len(obs_a), len(obs_b))
        assert not np.allclose(obs_a[1:m], obs_b[1:m]), "the task does not change the dynamics"
    else:  # reward-only tasks: same physics under the same seed and actions
        np.testing.assert_array_equal(obs_a[: n + 1], obs_b[: n + 1])


def test_episodes_end_at_the_family_horizon(families):
    family = families["HalfCheetahVel-v0"]
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    for step in range(1, family.horizon + 1):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated
        assert truncated == (step == family.horizon)


def test_halfcheetah_vel_reward_matches_definition(families):
    family = families["HalfCheetahVel-v0"]
    env = family.make_env(family.make_task(velocity=1.25))
    env.reset(seed=0)
    action = np.full(6, 0.5, dtype=np.float32)
    _, reward, _, _, info = env.step(action)
    expected = -abs(info["x_velocity"] - 1.25) - 0.05 * float(np.sum(action**2))
    # Gymnasium computes the control cost on the float32 action: agree to float32 precision.
    assert reward == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "frame_skip"),
    [("HalfCheetahVel", 1), ("HalfCheetahDir", 1), ("AntVel", 2), ("AntDir", 2)],
)
def test_v1_steps_at_the_papers_time_step(families, name, frame_skip):
    """v1 is v0 at rllab's time step per action (HalfCheetah 0.01 s, one physics step; Ant
    0.02 s, two of Gymnasium's 0.01 s); v0 keeps Gymnasium's five. Same task, same seed,
    same actions: the v1 env moves less simulated time per step, so its first observation
    after reset is the same and later ones differ."""
    v0, v1 = families[f"{name}-v0"], families[f"{name}-v1"]
    envs = [family.make_env(family.default_task()) for family in (v0, v1)]
    timestep = envs[0].unwrapped.model.opt.timestep
    assert [env.unwrapped.frame_skip for env in envs] == [5, frame_skip]
    assert [env.unwrapped.dt for env in envs] == pytest.approx([5 * timestep, 0.01 * frame_skip])
    first = [env.reset(seed=3)[0] for env in envs]
    np.testing.assert_array_equal(first[0], first[1])
    action = np.full(envs[0].action_space.shape, 0.5, dtype=np.float32)
    after = [env.step(action)[0] for env in envs]
    assert not np.allclose(after[0], after[1])
    # A caller's own frame_skip still wins (the family only sets a default).
    assert v1.make_env(v1.default_task(), frame_skip=5).unwrapped.frame_skip == 5


def test_ant_goal_reward_matches_definition(families):
    family = families["AntGoal-v0"]
    env = family.make_env(family.make_task(goal=[1.0, -2.0]))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(8, dtype=np.float32))
    xy = np.array([info["x_position"], info["y_position"]])
    assert info["reward_goal"] == pytest.approx(-np.abs(xy - [1.0, -2.0]).sum() + 4.0)
    assert info["reward_survive"] == pytest.approx(0.05)


def test_navigation2d_v1_moves_by_a_tenth_of_its_normalized_action(families):
    """v1 (the authors' rllab ``normalize``) acts in [-1, 1]^2: action a moves the agent as
    v0's action a / 10 does, and actions beyond the box are clipped to it."""
    v0, v1 = families["Navigation2D-v0"], families["Navigation2D-v1"]
    envs = [family.make_env(family.make_task(goal=[0.3, -0.2])) for family in (v0, v1)]
    np.testing.assert_allclose([env.action_space.high for env in envs], [[0.1, 0.1], [1, 1]])
    for env in envs:
        env.reset(seed=0)
    for action in ([0.5, -0.25], [1.0, 0.0], [-0.7, 0.3]):
        after = [
            env.step(np.array(a, dtype=np.float32))
            for env, a in zip(envs, (np.array(action) / 10, action), strict=True)
        ]
        np.testing.assert_allclose(after[1][0], after[0][0], atol=1e-7)
        assert after[1][1] == pytest.approx(after[0][1], abs=1e-7)
    obs, *_ = envs[1].step(np.array([5.0, -5.0], dtype=np.float32))
    np.testing.assert_allclose(obs - after[1][0], [0.1, -0.1], atol=1e-6)


def test_navigation_terminates_at_the_goal(families):
    family = families["Navigation2D-v0"]
    env = family.make_env(family.make_task(goal=[0.05, -0.05]))
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.array([0.05, -0.05], dtype=np.float32))
    assert terminated
    assert reward == pytest.approx(0.0, abs=1e-7)
    assert info["distance"] < 0.01


def test_crippled_leg_has_no_effect_from_its_actuators(families):
    family = families["AntCrippledLeg-v0"]
    env = family.make_env(family.make_task(crippled_legs=[2]))
    # Leg 2 is driven by hip_3 / ankle_3: commanding only those must equal commanding nothing.
    model = env.unwrapped.model
    joints = [model.joint(model.actuator_trnid[i, 0]).name for i in range(model.nu)]
    only_leg = np.zeros(8, dtype=np.float32)
    only_leg[[joints.index("hip_3"), joints.index("ankle_3")]] = 1.0
    obs_a, _, _ = _rollout(env, seed=0, steps=20, action=only_leg)
    obs_b, _, _ = _rollout(env, seed=0, steps=20, action=np.zeros(8, dtype=np.float32))
    np.testing.assert_array_equal(obs_a, obs_b)
    healthy = family.make_env(family.make_task(crippled_legs=[0]))
    obs_c, _, _ = _rollout(healthy, seed=0, steps=20, action=only_leg)
    assert len(obs_a) == len(obs_c) == 21  # no early termination: the full 20 steps compared
    assert not np.allclose(obs_a, obs_c)


def test_rand_params_scale_the_model(families):
    family = families["HopperRandParams-v0"]
    nominal = family.make_env(family.default_task()).unwrapped.model
    task = family.sample_tasks(1, np.random.default_rng(5))[0]
    model = family.make_env(task).unwrapped.model
    np.testing.assert_allclose(model.body_mass[1:], nominal.body_mass[1:] * task.body_mass_scale)
    np.testing.assert_allclose(
        model.dof_damping, nominal.dof_damping * np.asarray(task.dof_damping_scale)
    )
    np.testing.assert_allclose(
        model.geom_friction, nominal.geom_friction * np.asarray(task.geom_friction_scale)
    )
    # mj_setConst ran: the derived subtree masses follow the new masses.
    assert model.body_subtreemass[0] == pytest.approx(model.body_mass.sum())


def test_rand_params_family_keywords(families):
    family = metarl.make_family("Walker2dRandParams-v0", rand_params=["body_mass"])
    assert [p.name for p in family.parameters] == ["body_mass_scale"]
    narrow = metarl.make_family("HalfCheetahRandParams-v0", log_scale_limit=1.0)
    task = narrow.sample_tasks(1, np.random.default_rng(0))[0]
    assert np.all(np.asarray(task.body_mass_scale) <= 1.5 + 1e-12)
    with pytest.raises(ValueError, match="rand_params must be a non-empty subset"):
        metarl.make_family("HopperRandParams-v0", rand_params=["mass"])
    with pytest.raises(ValueError, match="log_scale_limit"):
        metarl.make_family("HopperRandParams-v0", log_scale_limit=-1)


# ---------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("family_id", BUNDLED_IDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_naming_task_and_step(families, family_id, bad):
    family = families[family_id]
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    env.step(env.action_space.sample())
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[0] = bad
    with pytest.raises(ValueError, match=rf"non-finite action .* step 1 of Task\('{family_id}'"):
        env.step(action)


def test_actions_are_clipped_to_the_action_space(families):
    family = families["HalfCheetahVel-v0"]
    big = np.full(6, 50.0, dtype=np.float32)
    one = np.ones(6, dtype=np.float32)
    env = family.make_env(family.default_task())
    _, _, _, _, info_big = (env.reset(seed=0), *env.step(big))[1:]
    env2 = family.make_env(family.default_task())
    _, _, _, _, info_one = (env2.reset(seed=0), *env2.step(one))[1:]
    assert info_big["reward_ctrl"] == info_one["reward_ctrl"] == pytest.approx(-0.05 * 6)
    assert info_big["x_velocity"] == info_one["x_velocity"]


def test_wrong_action_shape_raises(families):
    family = families["AntVel-v0"]
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(8,\)"):
        env.step(np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("family_id", ["HalfCheetahVel-v0", "HopperRandParams-v0", "AntGoal-v0"])
def test_unstable_physics_ends_episode_without_nan(families, family_id):
    family = families[family_id]
    env = family.make_env(family.default_task())
    obs, _ = env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    for poison in (1e30, np.nan):  # a blow-up, then a NaN state (MuJoCo resets on both)
        env.reset(seed=0)
        env.step(zero)
        env.unwrapped.data.qvel[:] = poison
        obs, reward, terminated, _, info = env.step(zero)
        assert info["sim_unstable"] is True
        assert terminated
        assert reward == 0.0
        assert all(v == 0.0 for v in metarl.reward_terms(info).values())
        assert np.all(np.isfinite(obs))


def test_repeated_instability_is_detected_each_time(families):
    # MuJoCo leaves its bad-state counter at 1 after each event: the guard must still see
    # the second one.
    family = families["HalfCheetahVel-v0"]
    env = family.make_env(family.default_task())
    zero = np.zeros(6, dtype=np.float32)
    for _ in range(3):
        env.reset(seed=0)
        env.unwrapped.data.qvel[:] = np.nan
        _, _, _, _, info = env.step(zero)
        assert info["sim_unstable"] is True
        warning = env.unwrapped.data.warning[mujoco.mjtWarning.mjWARN_BADQVEL]
        assert warning.number == 1


def test_non_finite_observation_from_a_plain_env_is_caught():
    """The guard also protects non-MuJoCo envs: a NaN observation never gets out."""

    class BrokenEnv(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.full(1, np.nan, np.float32), float("nan"), False, False, {"reward_x": 1.0}

    task = metarl.Task("Broken-v0", {"x": 0.0})
    env = metarl.TaskGuard(BrokenEnv(), task)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
    assert info["sim_unstable"] and terminated
    assert reward == 0.0 and info["reward_x"] == 0.0
    np.testing.assert_array_equal(obs, np.zeros(1))


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_pickled_and_copied_envs_keep_their_task(families, family_id):
    """Copies (pickle, deepcopy) rebuild the env of the same task, not the default one."""
    family = families[family_id]
    task = some_tasks(family, 2)[-1]
    assert task != family.default_task()
    env = family.make_env(task).unwrapped
    for copy_ in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
        obs_a, rew_a, _ = _rollout(env, seed=4, steps=15)
        obs_b, rew_b, _ = _rollout(copy_, seed=4, steps=15)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)


def test_huge_finite_action_is_clipped_not_called_non_finite(families):
    family = families["HalfCheetahVel-v0"]
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.full(6, 1e300))  # overflows float32, but is finite
    assert info["reward_ctrl"] == pytest.approx(-0.05 * 6)
    with pytest.raises(ValueError, match="is not numeric"):
        env.step(["a"] * 6)


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_retasked_env_behaves_as_a_new_env_of_the_task(families, family_id):
    """``family.retask_env`` (how the sampler reuses envs) gives exactly the env that
    ``make_env`` builds for the new task, including the model, rewards and terms, and copies of
    it keep the new task."""
    family = families[family_id]
    first, second = some_tasks(family, 2)
    env = family.make_env(first)
    _rollout(env, seed=1, steps=5)
    assert family.retask_env(env, second)
    assert env.env.task == second
    fresh = family.make_env(second)
    if hasattr(fresh.unwrapped, "model"):
        for field in ("body_mass", "body_inertia", "dof_damping", "geom_friction", "geom_rgba"):
            np.testing.assert_array_equal(
                getattr(env.unwrapped.model, field), getattr(fresh.unwrapped.model, field)
            )
    obs_a, rew_a, infos_a = _rollout(env, seed=3, steps=40)
    obs_b, rew_b, infos_b = _rollout(fresh, seed=3, steps=40)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert [metarl.reward_terms(i) for i in infos_a] == [metarl.reward_terms(i) for i in infos_b]
    assert pickle.loads(pickle.dumps(env)).env.task == second
    obs_c, _, _ = _rollout(pickle.loads(pickle.dumps(env.unwrapped)), seed=3, steps=40)
    np.testing.assert_array_equal(obs_c, obs_b)


def test_retask_rejects_foreign_tasks_and_bad_values(families):
    family = families["HalfCheetahVel-v0"]
    env = family.make_env(family.default_task())
    with pytest.raises(ValueError, match="belongs to family AntVel-v0"):
        family.retask_env(env, families["AntVel-v0"].default_task())
    with pytest.raises(ValueError, match="velocity must be finite"):
        env.unwrapped.set_task(velocity=float("nan"))


# ---------------------------------------------------------------------------- actuator families
def _joint_action(joint: int, value: float = 1.0) -> np.ndarray:
    action = np.zeros(6, dtype=np.float32)
    action[joint] = value
    return action


def test_crippled_joint_keeps_only_its_strength(families):
    family = families["HalfCheetahCrippledJoint-v0"]
    disabled = family.make_env(family.make_task(crippled_joints=[3], strength=0.0))
    obs_a, _, infos = _rollout(disabled, seed=0, steps=20, action=_joint_action(3))
    obs_b, _, _ = _rollout(disabled, seed=0, steps=20, action=np.zeros(6, dtype=np.float32))
    np.testing.assert_array_equal(obs_a, obs_b)  # a disabled motor moves nothing ...
    assert all(info["reward_ctrl"] == 0.0 for info in infos)  # ... and costs nothing
    # strength s: commanding 1 equals commanding s on a robot whose joint 3 is whole
    weak = family.make_env(family.make_task(crippled_joints=[3], strength=0.25))
    whole = family.make_env(family.make_task(crippled_joints=[1], strength=0.25))
    obs_c, rew_c, _ = _rollout(weak, seed=0, steps=20, action=_joint_action(3))
    obs_d, rew_d, _ = _rollout(whole, seed=0, steps=20, action=_joint_action(3, 0.25))
    np.testing.assert_allclose(obs_c, obs_d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rew_c, rew_d, rtol=0, atol=1e-12)
    assert not np.allclose(obs_a, obs_c)


def test_reversed_joint_pushes_the_other_way(families):
    """Robot with joint 2 reversed, commanded a, moves exactly as the robot with joint 4
    reversed moves when commanded a with joints 2 and 4 negated."""
    family = families["HalfCheetahReversedJoints-v0"]
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (30, 6)).astype(np.float32)
    flipped = actions.copy()
    flipped[:, [2, 4]] *= -1
    envs = [family.make_env(family.make_task(reversed_joints=[j])) for j in (2, 4)]
    runs = []
    for env, acts in zip(envs, (actions, flipped), strict=True):
        obs, _ = env.reset(seed=5)
        trajectory = [obs]
        for a in acts:
            trajectory.append(env.step(a)[0])
        runs.append(np.array(trajectory))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_actuator_families_features_and_colours(families):
    crippled = families["HalfCheetahCrippledJoint-v0"]
    task = crippled.make_task(crippled_joints=[0, 5], strength=0.1)  # an OOD pair
    np.testing.assert_allclose(crippled.task_features(task), [0.1, 1, 1, 1, 1, 0.1])
    env = crippled.make_env(task).unwrapped
    red = [env.model.geom(name).rgba.tolist() for name in ("bthigh", "bshin", "ffoot")]
    assert red[0] == red[2] == [1.0, 0.0, 0.0, 1.0] != red[1]
    reversed_ = families["HalfCheetahReversedJoints-v0"]
    np.testing.assert_array_equal(
        reversed_.task_features(reversed_.make_task(reversed_joints=[3])), [1, 1, 1, -1, 1, 1]
    )
    assert {t.crippled_joints for t in crippled.sample_tasks(200, np.random.default_rng(0))} == {
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
    }
    assert all(0 in t.crippled_joints or len(t.crippled_joints) == 2 for t in crippled.ood_tasks())
    assert all(len(t.reversed_joints) == 3 for t in reversed_.ood_tasks())
    assert reversed_.default_task().reversed_joints == ()  # the nominal robot
    drawn = reversed_.sample_tasks(4000, np.random.default_rng(0))
    assert {len(t.reversed_joints) for t in drawn} == {0, 1, 2, 4, 5, 6}
    frequency = np.mean([[j in t.reversed_joints for j in range(6)] for t in drawn], axis=0)
    np.testing.assert_allclose(frequency, 0.5, atol=0.03)  # no motor is safe to use
    for family, name in ((crippled, "crippled_joints"), (reversed_, "reversed_joints")):
        with pytest.raises(ValueError, match=rf"{name}=\[6\] is not allowed"):
            family.task_from_dict({name: [6]})
    with pytest.raises(ValueError, match=r"strength=0.5 is out of range: expected U\(0, 0.3\)"):
        crippled.task_from_dict({"crippled_joints": [1], "strength": 0.5})
