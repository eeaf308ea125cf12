"""The family registry, Gymnasium registration, and a family defined here as a user would."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metarl
from tests.conftest import BUNDLED_IDS


def test_bundled_families_are_registered():
    assert set(BUNDLED_IDS) <= set(metarl.family_ids())
    assert metarl.family_ids() == sorted(metarl.family_ids())
    assert metarl.family_spec("AntVel-v0").source == "metarl (bundled)"


def test_unknown_id_names_the_closest_ids():
    with pytest.raises(metarl.UnknownFamilyError) as info:
        metarl.make_family("HalfCheetahVell-v0")
    message = str(info.value)
    assert "no task family is registered as 'HalfCheetahVell-v0'" in message
    assert "Did you mean 'HalfCheetahVel-v0'" in message
    assert isinstance(info.value, KeyError)
    with pytest.raises(metarl.UnknownFamilyError, match="Did you mean 'AntVel-v0'"):
        metarl.make_family("antvel-v0")


def test_registering_an_existing_id_raises_unless_override():
    with pytest.raises(ValueError, match="already registered .*override=True"):
        metarl.register_family("AntVel-v0", "metarl_envs.ant:AntDirFamily")
    assert metarl.family_spec("AntVel-v0").entry_point != "metarl_envs.ant:AntDirFamily"


@pytest.mark.parametrize(
    ("family_id", "entry_point", "error", "match"),
    [
        ("no-version", "m:C", ValueError, "must look like 'Name-v0'"),
        ("Bad Id-v0", "m:C", ValueError, "must look like 'Name-v0'"),
        ("Ok-v0", "no_colon", ValueError, "must be 'module:Class'"),
        ("Ok-v0", dict, TypeError, "must be a metarl.TaskFamily subclass"),
        ("Ok-v0", 42, TypeError, "must be a metarl.TaskFamily subclass"),
    ],
)
def test_malformed_registrations_raise(family_id, entry_point, error, match):
    with pytest.raises(error, match=match):
        metarl.register_family(family_id, entry_point)
    assert family_id not in metarl.family_ids()


def test_lazy_entry_point_errors_name_the_family():
    metarl.register_family("Missing-v0", "no_such_module_xyz:Family")
    try:
        with pytest.raises(ImportError, match="could not load task family 'Missing-v0'"):
            metarl.make_family("Missing-v0")
    finally:
        metarl.unregister_family("Missing-v0")


def test_bad_family_kwargs_list_the_allowed_ones():
    with pytest.raises(ValueError, match=r"does not take \['speed'\].*\['horizon'\]"):
        metarl.make_family("HalfCheetahVel-v0", speed=3)
    with pytest.raises(ValueError, match=r"log_scale_limit.*rand_params.*horizon"):
        metarl.make_family("HopperRandParams-v0", mass=2)
    assert metarl.make_family("HalfCheetahVel-v0", horizon=50).horizon == 50
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        metarl.make_family("HalfCheetahVel-v0", horizon=0)


def test_gymnasium_make_takes_task_parameters_as_keywords():
    env = gym.make("metarl/HalfCheetahVel-v0", velocity=1.5)
    _, info = env.reset(seed=0)
    assert info["task"] == metarl.make_family("HalfCheetahVel-v0").make_task(velocity=1.5)
    assert env.unwrapped.velocity == 1.5
    env = gym.make("metarl/HopperRandParams-v0", render_mode="rgb_array")
    assert env.unwrapped.render_mode == "rgb_array"
    with pytest.raises(ValueError, match="velocity=7.0 is out of range"):
        gym.make("metarl/HalfCheetahVel-v0", velocity=7.0)
    for family_id in BUNDLED_IDS:
        assert f"metarl/{family_id}" in gym.registry


# ---------------------------------------------------------------------------- user family


class SlideEnv(gym.Env):
    """A block on a line that must reach ``target``; ``friction`` slows it."""

    def __init__(self, target: float = 0.0, friction: float = 0.1, render_mode: Any = None):
        self.target, self.friction = float(target), float(friction)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v = float(self.np_random.uniform(-0.1, 0.1)), 0.0
        return np.array([self.x, self.v]), {}

    def step(self, action):
        self.v = (1.0 - self.friction) * self.v + 0.1 * float(action[0])
        self.x = float(np.clip(self.x + 0.1 * self.v, -10.0, 10.0))
        distance = abs(self.x - self.target)
        info = {"reward_distance": -distance}
        return np.array([self.x, self.v]), -distance, distance < 0.01, False, info


class SlideFamily(metarl.TaskFamily):
    """Slide a block to a target with unknown friction."""

    horizon = 25
    parameters = (
        metarl.Parameter("target", "where to stop", metarl.Uniform(-1.0, 1.0), default=0.5),
        metarl.Parameter(
            "friction", "velocity loss per step", metarl.Uniform(0.0, 0.5), 0.1, ood=None
        ),
    )
    env_class = SlideEnv


@pytest.fixture
def slide_family():
    metarl.register_family("TestSlide-v0", SlideFamily, horizon=10)
    yield
    metarl.unregister_family("TestSlide-v0")
    assert "TestSlide-v0" not in metarl.family_ids()
    assert "metarl/TestSlide-v0" not in gym.registry


def test_family_defined_in_a_test_registers_makes_and_steps(slide_family):
    family = metarl.make_family("TestSlide-v0")
    assert family.id == "TestSlide-v0" and family.horizon == 10  # registered default
    assert metarl.make_family("TestSlide-v0", horizon=30).horizon == 30
    tasks = family.sample_tasks(4, np.random.default_rng(0))
    assert len(set(tasks)) == 4 and all(t.family == "TestSlide-v0" for t in tasks)
    assert family.test_tasks(5) == metarl.make_family("TestSlide-v0").test_tasks(5)
    env = family.make_env(tasks[0])
    check_env(env.unwrapped, skip_render_check=True)
    _, info = env.reset(seed=1)
    assert info["task"] == tasks[0]
    steps, truncated = 0, False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
        steps += 1
        assert reward == info["reward_distance"]
        assert not terminated
    assert steps == 10  # the family horizon, enforced for the user's env
    gym_env = gym.make("metarl/TestSlide-v0", target=-0.5, friction=0.2)
    gym_env.reset(seed=0)
    assert gym_env.unwrapped.target == -0.5 and gym_env.unwrapped.friction == 0.2
    with pytest.raises(ValueError, match="already registered"):
        metarl.register_family("TestSlide-v0", SlideFamily)
    metarl.register_family("TestSlide-v0", SlideFamily, override=True)
    assert metarl.make_family("TestSlide-v0").horizon == 25
    with pytest.raises(ValueError, match="no out-of-distribution range"):
        family.ood_tasks(2)


def test_family_definition_errors_are_clear():
    class NoParams(metarl.TaskFamily):
        horizon = 5
        env_class = SlideEnv

    class NoHorizon(metarl.TaskFamily):
        parameters = SlideFamily.parameters
        env_class = SlideEnv

    class NoEnv(metarl.TaskFamily):
        horizon = 5
        parameters = SlideFamily.parameters

    class ClashingName(metarl.TaskFamily):
        horizon = 5
        parameters = (metarl.Parameter("values", "x", metarl.Uniform(0, 1), 0.5),)
        env_class = SlideEnv

    with pytest.raises(TypeError, match="at least one Parameter"):
        NoParams()
    with pytest.raises(TypeError, match=r"\['values'\] would hide Task attributes"):
        ClashingName()
    with pytest.raises(TypeError, match="horizon >= 1"):
        NoHorizon()
    family = NoEnv()
    with pytest.raises(TypeError, match="must set env_class or override create_env"):
        family.make_env(family.default_task())
