"""The ``ray`` sampler backend: the same batches as the local backend, errors reach the
caller, actors stop on close. Runs a local Ray instance (2 CPUs)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import torch

import metarl
from metarl.sampling import Sampler
from tests.sampler_families import FlakyFamily, plant_death_tokens
from tests.test_sampler import assert_batches_equal, make_sampler

ray = pytest.importorskip("ray", reason='the ray backend is optional: pip install "metarl[ray]"')


@pytest.fixture(scope="module", autouse=True)
def death_tokens(tmp_path_factory):
    """A local Ray instance (2 CPUs) whose actors see ``$METARL_FLAKY_DIE_TOKENS``: the
    folder where a test plants the deaths of FlakyEnv's ``die_at`` steps."""
    folder = tmp_path_factory.mktemp("death_tokens")
    before = os.environ.get("METARL_FLAKY_DIE_TOKENS")
    os.environ["METARL_FLAKY_DIE_TOKENS"] = str(folder)  # inherited by Ray's workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield folder
    ray.shutdown()
    if before is None:
        del os.environ["METARL_FLAKY_DIE_TOKENS"]
    else:
        os.environ["METARL_FLAKY_DIE_TOKENS"] = before


@pytest.mark.parametrize("family_id", ["HalfCheetahVel-v0", "Flaky-v0"])
def test_ray_batches_equal_local_batches(family_id):
    """Vectorized (HalfCheetahVel) or not (a plain Python env): the same batches, to the bit,
    as the local backend, over two calls."""
    if family_id == "Flaky-v0":
        family = FlakyFamily()
        calls = [[family.make_task(), family.make_task(end_at=4)], [family.make_task(blow_at=3)]]
    else:
        family = metarl.make_family(family_id, horizon=15)
        calls = [family.sample_tasks(3, np.random.default_rng(k)) for k in (0, 1)]
    with make_sampler(family, 0, seed=2) as local:
        expected = [local.sample(tasks, None, 2) for tasks in calls]
    with make_sampler(family, 2, seed=2, backend="ray") as remote:
        assert remote.num_workers == 2 and remote.backend == "ray"
        for tasks, batch in zip(calls, expected, strict=True):
            assert_batches_equal(remote.sample(tasks, None, 2), batch)


def test_an_actor_killed_mid_batch_is_replaced_and_the_batch_is_the_same(death_tokens):
    family = FlakyFamily()
    tasks = [family.make_task(), family.make_task(die_at=4), family.make_task(end_at=6)]
    with make_sampler(family, 0, seed=5) as local:  # in this process: no token yet, no death
        expected = [local.sample(tasks, None, 2), local.sample(tasks, None, 2)]
    with make_sampler(family, 2, seed=5, backend="ray") as remote:
        plant_death_tokens(death_tokens, 1)
        # The dying task's two episodes are on both actors: whichever claims the token dies.
        with pytest.warns(
            RuntimeWarning, match=r"(?s)Ray sampler actor [01] died.*re-ran its share"
        ):
            first = remote.sample(tasks, None, 2)
        assert not list(death_tokens.iterdir())  # the actor did die
        assert_batches_equal(first, expected[0])
        assert_batches_equal(remote.sample(tasks, None, 2), expected[1])


def test_an_actor_that_keeps_dying_gives_a_clear_error(death_tokens):
    family = FlakyFamily()
    plant_death_tokens(death_tokens, 10)
    sampler = make_sampler(family, 2, backend="ray")
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(metarl.sampling.WorkerError, match="gives up"),
    ):
        sampler.sample([family.make_task(), family.make_task(die_at=2)], None, 1)
    for token in death_tokens.iterdir():
        token.unlink()


def test_ray_errors_reach_the_caller_and_actors_stop_on_close():
    family = FlakyFamily()
    sampler = make_sampler(family, 2, backend="ray")
    actors = list(sampler._started_workers()._actors)
    with pytest.raises(RuntimeError, match="raised at step 2 as asked"):
        sampler.sample([family.make_task(), family.make_task(raise_at=2)], None, 1)
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample([family.make_task()], None, 1)
    for actor in actors:  # killed (ray.kill takes effect asynchronously): calls then fail
        assert _dies_within(actor, seconds=30)


def _dies_within(actor, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ready.remote(), timeout=seconds)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.2)
    return False


def test_ray_bad_input():
    with pytest.raises(ValueError, match="num_workers must be an int >= 1"):
        Sampler("Navigation2D-v0", backend="ray", num_workers=0)


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "metarl\[ray\]"'):
        Sampler("Navigation2D-v0", backend="ray", num_workers=1)


def test_a_run_on_ray_is_the_same_run_as_on_this_machine():
    """``backend: ray`` in a learner's config: the same meta-update to the bit."""
    values = dict(family="Navigation2D-v0", meta_batch_size=3, fast_batch_size=2, hidden_sizes=(8,))
    learners = [
        metarl.MAMLTRPO(metarl.MAMLTRPOConfig(**values, num_workers=0)),
        metarl.MAMLTRPO(metarl.MAMLTRPOConfig(**values, num_workers=2, backend="ray")),
    ]
    for learner in learners:
        learner.train(1)
        learner.close()
    assert learners[1].sampler.backend == "ray"
    local, remote = (dict(learner.policy.named_parameters()) for learner in learners)
    for name, value in local.items():
        assert torch.equal(value, remote[name]), name
