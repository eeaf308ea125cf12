"""Vectorised steps: every bundled family's vector step (MuJoCo's VectorSteps, Navigation2D's
ArrayStep) reproduces its env's own step to the bit, through the sampler, whatever the number
of threads."""

from __future__ import annotations

import multiprocessing as mp
import threading

import numpy as np
import pytest
import torch
from metarl_envs import BUNDLED_FAMILIES
from metarl_envs.half_cheetah import HalfCheetahVelEnv, HalfCheetahVelStep
from metarl_envs.navigation import Navigation2DEnv, Navigation2DStep

import metarl
from metarl.array_step import ArrayStep, ArrayStepper, vector_step_of
from metarl.mujoco import vector_step
from metarl.mujoco.vector_step import VectorStep
from metarl.sampling import Sampler
from metarl.sampling.workers import InProcessWorkers
from tests.sampler_families import FlakyFamily, VectorFlakyFamily
from tests.test_sampler import assert_batches_equal, make_sampler

MUJOCO_FAMILIES = [fid for fid in BUNDLED_FAMILIES if not fid.startswith("Navigation2D")]


def sample_both_ways(family, calls, episodes: int):
    """The batches of ``calls`` (lists of tasks, one sampler call each) from each env's own
    step and from the vectorized step on 0 or 2 threads, checked equal to the bit; the
    former's."""
    runs = {}
    for vectorized, workers in ((False, 0), (True, 0), (True, 2)):
        with make_sampler(family, workers, seed=4, vectorized=vectorized) as sampler:
            assert sampler.vectorized is vectorized
            runs[vectorized, workers] = [sampler.sample(tasks, None, episodes) for tasks in calls]
    reference = runs.pop((False, 0))
    for batches in runs.values():
        for batch, expected in zip(batches, reference, strict=True):
            assert_batches_equal(batch, expected)
    return reference


@pytest.mark.parametrize("family_id", MUJOCO_FAMILIES)
def test_vectorized_batches_equal_the_envs_own_steps(family_id):
    """Two calls (the second on new tasks, so envs are retasked): the same batches, to the
    bit, from Gymnasium's step in each env and from the vectorized step on 0 or 2 threads.
    Hopper, Walker2d and Ant fall within the horizon, so termination is covered too."""
    family = metarl.make_family(family_id, horizon=60)
    calls = [family.sample_tasks(2, np.random.default_rng(k)) for k in (0, 1)]
    reference = sample_both_ways(family, calls, 3)
    assert reference[0].mask.sum() > 0


@pytest.mark.parametrize(
    ("family_id", "bound", "horizon", "episodes"),
    [("Navigation2D-v0", 0.1, 40, 5), ("Navigation2D-v1", 1.0, 100, 20)],
)
def test_navigation2d_array_step_batches_equal_the_envs_own_steps(
    family_id, bound, horizon, episodes
):
    """Navigation2D's ArrayStep, one NumPy call per time step: the same batches to the bit
    as each env's own step, over three calls (new tasks in the second, so envs are
    retasked; tasks of the first again in the third, so envs are reused). Goals on or near
    the origin, which a random walk of (on v0 mostly clipped) 0.1 steps reaches: episodes
    end early at the goal, at different steps (v1's unclipped walk rarely lands within 0.01
    of a goal: it gets more steps and episodes)."""
    family = metarl.make_family(family_id, horizon=horizon)
    near = [family.make_task(goal=goal) for goal in ((0.0, 0.0), (0.1, -0.1), (-0.2, 0.1))]
    calls = [near[:2], family.sample_tasks(3, np.random.default_rng(1)), [near[2], near[0]]]
    reference = sample_both_ways(family, calls, episodes)
    ended = torch.cat([batch.lengths[batch.terminated] for batch in reference])
    assert len(ended) > 3 and len(set(ended.tolist())) > 1 and (ended < horizon).all()
    assert not all(batch.terminated.all() for batch in reference)
    assert all((batch.lengths[~batch.terminated] == horizon).all() for batch in reference)
    assert (reference[0].actions.abs() > bound).any()  # the batch holds actions before clipping


def test_an_array_steps_unstable_and_terminal_steps_follow_the_guards_rule():
    """A second pure-array step (tests/sampler_families.py): episodes that blow up (NaN
    observation and reward) and end early give the same batches as the envs' own steps,
    from reset states drawn per slot (FlakyEnv's reset draws its start from its seed)."""
    family = VectorFlakyFamily()
    tasks = [family.make_task(), family.make_task(blow_at=4), family.make_task(end_at=6)]
    reference = sample_both_ways(family, [tasks, tasks[::-1]], 3)
    assert reference[0].sim_unstable.tolist() == [[False] * 3, [True] * 3, [False] * 3]
    assert reference[0].lengths.tolist() == [[10] * 3, [5] * 3, [7] * 3]
    assert len(set(reference[0].observations[0, :, 0, 0].tolist())) == 3  # own reset seeds


def test_vectorized_is_the_default_where_supported():
    with make_sampler("HalfCheetahVel-v0") as sampler:
        assert sampler.vectorized
    with make_sampler("Navigation2D-v0") as sampler:
        assert sampler.vectorized
    with pytest.raises(ValueError, match="names no vector_step"):
        make_sampler(FlakyFamily(), vectorized=True)


def test_navigation2d_steps_in_the_samplers_process_by_default():
    """The default sampler of the first run (``metarl train``): no worker processes, every
    env stepped by Navigation2D's ArrayStep, one env kept per task."""
    family = metarl.make_family("Navigation2D-v0", horizon=5)
    with Sampler(family) as sampler:  # num_workers=None: every core
        sampler.sample(family.sample_tasks(3, np.random.default_rng(0)), None, 4)
        workers = sampler._started_workers()
        assert isinstance(workers, InProcessWorkers) and sampler.vectorized
        assert isinstance(workers._slots._stepper, ArrayStepper)
        assert len({id(env) for env in workers._slots.envs}) == 3
        assert mp.active_children() == []


def test_a_subclass_does_not_inherit_its_parents_vector_step():
    """A subclass may step differently (another reward), so it must name its own."""

    class Slower(HalfCheetahVelEnv):
        def _get_rew(self, x_velocity, action):
            reward, terms = super()._get_rew(x_velocity, action)
            return reward - 1.0, terms

    assert vector_step_of(HalfCheetahVelEnv(velocity=1.0)) is HalfCheetahVelStep
    assert vector_step_of(Slower(velocity=1.0)) is None
    assert vector_step_of(Navigation2DEnv()) is Navigation2DStep

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


def test_an_array_step_reads_and_returns_its_whole_state():
    class Forgetful(ArrayStep):
        state = ("_position",)

        def step(self, rows, state, actions):
            obs = state["_position"].astype(np.float32)
            return {}, obs, np.zeros(len(rows)), np.zeros(len(rows), dtype=bool)

    class ForgetfulEnv(Navigation2DEnv):
        vector_step = Forgetful

    class Lost(Forgetful):
        state = ("_position", "_velocity")

    class LostEnv(Navigation2DEnv):
        vector_step = Lost

    stepper = ArrayStepper([ForgetfulEnv()], Forgetful)
    stepper.capture(0)
    with pytest.raises(ValueError, match=r"Forgetful.step returned no '_position'"):
        stepper.step(np.array([0]), np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="names '_velocity', which LostEnv does not have"):
        ArrayStepper([LostEnv()], Lost)
    with pytest.raises(ValueError, match="an env of Navigation2DEnv in a batch stepped by"):
        ArrayStepper([ForgetfulEnv(), Navigation2DEnv()], Forgetful)
    with pytest.raises(ValueError, match="at least one env"):
        Navigation2DStep([])


@pytest.mark.parametrize("threads", [2, 4])
def test_physics_threads_stop_on_close(threads):
    """Ant steps on Python threads (its contact forces need each env's MjData): the two
    lanes' threads, and with more than two workers a pool of physics threads per lane."""
    family = metarl.make_family("AntVel-v0", horizon=5)
    before = set(threading.enumerate())
    with make_sampler(family, threads) as sampler:
        sampler.sample(family.sample_tasks(2, np.random.default_rng(0)), None, 2)
        names = {t.name.rsplit("_", 1)[0] for t in threading.enumerate()}
        assert "metarl-lane" in names
        assert ("metarl-physics" in names) == (threads > 2)
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


# ---------------------------------------------------------------------------- lanes
def spy_on_lanes(monkeypatch) -> list[int]:
    """Record the number of lanes of every batch the samplers run concurrently."""
    seen: list[int] = []
    original = Sampler._run_concurrently

    def spied(self, runs):
        seen.append(len(runs))
        return original(self, runs)

    monkeypatch.setattr(Sampler, "_run_concurrently", spied)
    return seen


@pytest.mark.parametrize("family_id", ["HalfCheetahVel-v0", "AntVel-v0"])
def test_lanes_give_the_batch_of_one_loop(family_id, monkeypatch):
    """Vectorized MuJoCo envs on two threads or more run in two lanes (halves of the tasks,
    one thread each, with 1 or 2 physics threads of their own): the same batches, to the bit,
    as one loop on the calling thread and as each env's own step, with episodes that end at
    different steps (Ant falls), an odd number of tasks and per-task parameters."""
    seen = spy_on_lanes(monkeypatch)
    family = metarl.make_family(family_id, horizon=40)
    tasks = family.sample_tasks(5, np.random.default_rng(2))
    runs = {}
    for vectorized, workers in ((False, 0), (True, 0), (True, 2), (True, 3)):
        with make_sampler(family, workers, seed=6, vectorized=vectorized) as sampler:
            policy = sampler.policy
            per_task = [{k: v + 0.05 * i for k, v in policy.params().items()} for i in range(5)]
            runs[vectorized, workers] = [
                sampler.sample(tasks, per_task, 8),
                sampler.sample(tasks[:2], None, 3),
            ]
    assert seen == [2, 2, 2, 2]  # two calls each on 2 and 3 workers
    reference = runs.pop((False, 0))
    for batches in runs.values():
        for batch, expected in zip(batches, reference, strict=True):
            assert_batches_equal(batch, expected)
    if family_id.startswith("Ant"):
        lengths = reference[0].lengths
        assert (lengths < 40).any() and len(set(lengths.flatten().tolist())) > 2


def test_a_failing_lane_stops_the_other_and_the_error_is_raised(monkeypatch):
    """An error in one lane (here the vector step of the second half's envs raising at step
    5) stops the other lane at its next step; the sampler raises it and closes, with no
    thread left behind."""
    seen = spy_on_lanes(monkeypatch)
    original = HalfCheetahVelStep.outputs
    steps: dict[int, int] = {}

    def failing(self, rows, before, after, actions):
        key = id(self)
        steps[key] = steps.get(key, 0) + 1
        if steps[key] == 5 and float(self.velocity[0]) == target:
            raise RuntimeError("the physics of task 3 failed")
        return original(self, rows, before, after, actions)

    monkeypatch.setattr(HalfCheetahVelStep, "outputs", failing)
    family = metarl.make_family("HalfCheetahVel-v0", horizon=30)
    tasks = family.sample_tasks(4, np.random.default_rng(0))
    target = float(tasks[2].velocity)  # the first task of the second half
    before = set(threading.enumerate())
    sampler = make_sampler(family, 2)
    with pytest.raises(RuntimeError, match="task 3 failed"):
        sampler.sample(tasks, None, 2)
    assert seen == [2]
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(tasks, None, 2)
    assert set(threading.enumerate()) <= before
