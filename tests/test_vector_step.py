"""Vectorised steps: every bundled MuJoCo family's VectorStep reproduces its env's own step to
the bit, through the sampler, whatever the number of threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from metarl_envs import BUNDLED_FAMILIES
from metarl_envs.half_cheetah import HalfCheetahVelEnv, HalfCheetahVelStep

import metarl
from metarl.mujoco import vector_step
from metarl.mujoco.vector_step import VectorStep, vector_step_of
from tests.test_sampler import assert_batches_equal, make_sampler

MUJOCO_FAMILIES = [fid for fid in BUNDLED_FAMILIES if fid != "Navigation2D-v0"]


@pytest.mark.parametrize("family_id", MUJOCO_FAMILIES)
def test_vectorized_batches_equal_the_envs_own_steps(family_id):
    """Two calls (the second on new tasks, so envs are retasked): the same batches, to the
    bit, from Gymnasium's step in each env and from the vectorized step on 0 or 2 threads.
    Hopper, Walker2d and Ant fall within the horizon, so termination is covered too."""
    family = metarl.make_family(family_id, horizon=60)
    calls = [family.sample_tasks(2, np.random.default_rng(k)) for k in (0, 1)]
    runs = {}
    for vectorized, workers in ((False, 0), (True, 0), (True, 2)):
        with make_sampler(family, workers, seed=4, vectorized=vectorized) as sampler:
            assert sampler.vectorized is vectorized
            runs[vectorized, workers] = [sampler.sample(tasks, None, 3) for tasks in calls]
    reference = runs.pop((False, 0))
    for batches in runs.values():
        for batch, expected in zip(batches, reference, strict=True):
            assert_batches_equal(batch, expected)
    assert reference[0].mask.sum() > 0


def test_vectorized_is_the_default_where_supported():
    with make_sampler("HalfCheetahVel-v0") as sampler:
        assert sampler.vectorized
    with make_sampler("Navigation2D-v0") as sampler:
        assert not sampler.vectorized
    with pytest.raises(ValueError, match="names no vector_step"):
        make_sampler("Navigation2D-v0", vectorized=True)


def test_a_subclass_does_not_inherit_its_parents_vector_step():
    """A subclass may step differently (another reward), so it must name its own."""

    class Slower(HalfCheetahVelEnv):
        def _get_rew(self, x_velocity, action):
            reward, terms = super()._get_rew(x_velocity, action)
            return reward - 1.0, terms

    assert vector_step_of(HalfCheetahVelEnv(velocity=1.0)) is HalfCheetahVelStep
    assert vector_step_of(Slower(velocity=1.0)) is None

    class Wrong(HalfCheetahVelEnv):
        vector_step = "fast"

    with pytest.raises(TypeError, match="must be a VectorStep subclass"):
        vector_step_of(Wrong(velocity=1.0))


def test_family_settings_must_agree_across_a_batch():
    envs = [HalfCheetahVelEnv(velocity=1.0), HalfCheetahVelEnv(velocity=2.0)]
    step = HalfCheetahVelStep(envs)
    assert step.velocity.tolist() == [1.0, 2.0]
    other = HalfCheetahVelEnv(velocity=1.0, ctrl_cost_weight=0.5)
    with pytest.raises(ValueError, match="disagree on '_ctrl_cost_weight'"):
        HalfCheetahVelStep([envs[0], other])
    with pytest.raises(ValueError, match="at least one env"):
        HalfCheetahVelStep([])
    assert issubclass(HalfCheetahVelStep, VectorStep)


def test_physics_threads_stop_on_close():
    """Ant steps on a pool of Python threads (its contact forces need each env's MjData)."""
    family = metarl.make_family("AntVel-v0", horizon=5)
    before = set(threading.enumerate())
    with make_sampler(family, 2) as sampler:
        sampler.sample(family.sample_tasks(2, np.random.default_rng(0)), None, 2)
        assert any(t.name.startswith("metarl-physics") for t in threading.enumerate())
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("family_id", ["HalfCheetahVel-v0", "HopperRandParams-v0"])
def test_threads_over_own_mjdata_equal_mujocos_batch(family_id, monkeypatch):
    """The other way to step (used for Ant, and for every family on MuJoCo < 4): the same."""
    family = metarl.make_family(family_id, horizon=40)
    tasks = family.sample_tasks(2, np.random.default_rng(5))
    calls = {"batch": 0, "threads": 0}
    for way in calls:
        original = getattr(vector_step.VectorStepper, f"_step_{way}")

        def counted(self, *args, _way=way, _original=original):
            calls[_way] += 1
            return _original(self, *args)

        monkeypatch.setattr(vector_step.VectorStepper, f"_step_{way}", counted)
    with make_sampler(family, 2, seed=1) as sampler:
        expected = sampler.sample(tasks, None, 3)
    assert calls["batch"] > 0 and calls["threads"] == 0
    monkeypatch.setattr(vector_step, "mujoco_batch", None)
    with make_sampler(family, 2, seed=1) as sampler:
        batch = sampler.sample(tasks, None, 3)
    assert calls["threads"] > 0
    assert_batches_equal(batch, expected)


@pytest.mark.parametrize(
    ("family_id", "shared"), [("HalfCheetahVel-v0", True), ("AntVel-v0", False)]
)
def test_slots_of_a_task_share_an_env_only_on_mujocos_batch(family_id, shared):
    """MuJoCo's batch holds every slot's state, so one env per task is kept (each env's MjData
    reserves megabytes, and 800 of them slowed PyTorch 2x); the threads path steps each env's
    own MjData, so there every slot has its own env. The batches are checked equal to the
    envs' own steps above."""
    family = metarl.make_family(family_id, horizon=5)
    tasks = family.sample_tasks(3, np.random.default_rng(0))
    with make_sampler(family, 0) as sampler:
        for n_tasks, episodes in ((3, 4), (2, 5)):
            sampler.sample(tasks[:n_tasks], None, episodes)
            slots = sampler._started_workers()._slots
            envs = {id(env) for env in slots.envs}
            assert len(envs) == (n_tasks if shared else n_tasks * episodes)
            assert envs == {id(env) for env in slots._owned}
            assert [env.unwrapped.velocity for env in slots.envs] == [
                t.velocity for t in tasks[:n_tasks] for _ in range(episodes)
            ]


def test_the_threads_path_refuses_an_env_in_two_rows(monkeypatch):
    monkeypatch.setattr(vector_step, "mujoco_batch", None)
    family = metarl.make_family("HalfCheetahVel-v0")
    env = family.make_env(family.make_task()).unwrapped
    with pytest.raises(ValueError, match="every row needs its own env"):
        vector_step.VectorStepper([env, env], HalfCheetahVelStep, 0, lambda: None)
