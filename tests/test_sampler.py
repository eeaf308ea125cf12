"""The batched multi-task sampler: shapes, masks, replay against the task envs, determinism
across worker counts, early termination, unstable physics, errors and process hygiene."""

from __future__ import annotations

import gc
import multiprocessing as mp
import threading

import numpy as np
import pytest
import torch

import metarl
from metarl.policies import GaussianMLPPolicy
from metarl.sampling import EpisodeBatch, Sampler
from tests.sampler_families import FlakyFamily, plant_death_tokens

BATCH_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "log_probs",
    "mask",
    "lengths",
    "terminated",
    "sim_unstable",
    "reset_seeds",
)


def short(family_id: str, horizon: int = 25) -> metarl.TaskFamily:
    return metarl.make_family(family_id, horizon=horizon)


def make_sampler(family, num_workers: int = 0, seed: int = 0, **kwargs) -> Sampler:
    torch.manual_seed(0)  # the default policy's initial weights
    return Sampler(family, num_workers=num_workers, seed=seed, **kwargs)


def assert_batches_equal(a: EpisodeBatch, b: EpisodeBatch) -> None:
    assert a.tasks == b.tasks
    for name in BATCH_FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def replay(family: metarl.TaskFamily, batch: EpisodeBatch, i: int, j: int, task=None):
    """Re-run episode (i, j) in a fresh ``family.make_env`` of ``task`` (default: its own) with
    the batch's reset seed and actions; return observations, rewards and the end flags."""
    env = family.make_env(task or batch.tasks[i])
    obs, _ = env.reset(seed=int(batch.reset_seeds[i, j]))
    observations, rewards = [obs], []
    terminated = unstable = False
    for t in range(int(batch.lengths[i, j])):
        obs, reward, terminated, truncated, info = env.step(batch.actions[i, j, t].numpy())
        observations.append(obs)
        rewards.append(reward)
        unstable = info["sim_unstable"]
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), terminated, unstable


# ---------------------------------------------------------------------------- shapes, masks


def test_batch_shapes_masks_and_returns():
    family = short("Navigation2D-v0", horizon=30)
    with make_sampler(family) as sampler:
        tasks = family.sample_tasks(3, np.random.default_rng(0))
        batch = sampler.sample(tasks, sampler.policy.params(), episodes_per_task=4)
    assert batch.observations.shape == (3, 4, 30, 2)
    assert batch.actions.shape == (3, 4, 30, 2)
    for name in ("rewards", "log_probs", "mask"):
        assert getattr(batch, name).shape == (3, 4, 30)
    for name in ("lengths", "terminated", "sim_unstable", "reset_seeds"):
        assert getattr(batch, name).shape == (3, 4)
    assert (batch.num_tasks, batch.episodes_per_task, batch.horizon) == (3, 4, 30)
    steps = torch.arange(30)
    expected_mask = (steps < batch.lengths.unsqueeze(-1)).float()
    assert torch.equal(batch.mask, expected_mask)
    assert batch.num_env_steps == int(batch.lengths.sum()) == int(batch.mask.sum())
    torch.testing.assert_close(batch.returns(), (batch.rewards * batch.mask).sum(-1))
    assert batch.returns().shape == (3, 4)
    assert list(batch.tasks) == tasks
    sub = batch.select(1)
    assert sub.tasks == (tasks[1],) and torch.equal(sub.rewards[0], batch.rewards[1])


def test_log_probs_are_those_of_the_sampling_policy():
    family = short("HalfCheetahVel-v0")
    with make_sampler(family) as sampler:
        policy = sampler.policy
        tasks = family.sample_tasks(2, np.random.default_rng(1))
        other = {k: v + 0.1 for k, v in policy.params().items()}
        per_task = [policy.params(), other]
        batch = sampler.sample(tasks, per_task, episodes_per_task=3)
    for i, params in enumerate(per_task):
        dist = policy.distribution(batch.observations[i], params)
        expected = dist.log_prob(batch.actions[i]) * batch.mask[i]
        torch.testing.assert_close(batch.log_probs[i], expected)
    # The second task really used its own parameters: its log-probs under the first differ.
    wrong = policy.distribution(batch.observations[1], per_task[0]).log_prob(batch.actions[1])
    assert not torch.allclose(wrong, batch.log_probs[1])


def test_a_policy_subclass_with_its_own_forward_is_sampled_with_it():
    """The sampler's fast forward (acting_forward) is only for the policy's own forward: a
    subclass that changes forward is evaluated through it (functional_call)."""

    class Halved(GaussianMLPPolicy):
        def forward(self, obs):
            mean, log_std = super().forward(obs)
            return 0.5 * mean, log_std

    family = short("Navigation2D-v0", horizon=10)
    torch.manual_seed(0)
    policy = Halved(2, 2, hidden_sizes=(8,))
    with metarl.Sampler(family, num_workers=0, seed=0, policy=policy) as sampler:
        tasks = family.sample_tasks(2, np.random.default_rng(0))
        batch = sampler.sample(tasks, None, 2, deterministic=True)
    expected = 0.5 * policy.mean_net(batch.observations)
    torch.testing.assert_close(batch.actions, expected * batch.mask.unsqueeze(-1))


def test_deterministic_sampling_acts_with_the_mean():
    family = short("Navigation2D-v0", horizon=10)
    with make_sampler(family) as sampler:
        tasks = family.sample_tasks(2, np.random.default_rng(0))
        batch = sampler.sample(tasks, None, 2, deterministic=True)
        mean, _ = sampler.policy.mean_and_log_std(batch.observations)
    torch.testing.assert_close(batch.actions, mean * batch.mask.unsqueeze(-1))


# ---------------------------------------------------------------------------- really the tasks


@pytest.mark.parametrize("family_id", ["Navigation2D-v0", "HalfCheetahVel-v0", "AntGoal-v0"])
def test_every_episode_ran_in_its_own_task(family_id):
    """Replaying each episode in a fresh env of its task, with its reset seed and actions,
    reproduces its observations and rewards exactly; another task's env does not."""
    family = short(family_id, horizon=15)
    with make_sampler(family) as sampler:
        tasks = family.sample_tasks(3, np.random.default_rng(2))
        batch = sampler.sample(tasks, None, episodes_per_task=2)
    for i in range(3):
        for j in range(2):
            n = int(batch.lengths[i, j])
            obs, rewards, _, _ = replay(family, batch, i, j)
            np.testing.assert_array_equal(batch.observations[i, j, :n], obs[:n].astype(np.float32))
            np.testing.assert_array_equal(batch.rewards[i, j, :n], rewards.astype(np.float32))
    _, foreign, _, _ = replay(family, batch, 0, 0, task=tasks[1])
    assert not np.array_equal(batch.rewards[0, 0, : len(foreign)], foreign.astype(np.float32))


def test_rewards_follow_the_task_parameter():
    """HalfCheetahVel: the same motions score -|v - v*|, so a task's reward minus another's
    is exactly what their target velocities predict."""
    family = short("HalfCheetahVel-v0", horizon=10)
    slow, fast = family.make_task(velocity=0.0), family.make_task(velocity=2.0)
    with make_sampler(family) as sampler:
        batch = sampler.sample([slow, fast], None, 1, seed=7, deterministic=True)
    # Replay each episode in its own task's env and in the other task's: same physics, so
    # only the velocity term differs.
    for i, (task, other) in enumerate([(slow, fast), (fast, slow)]):
        _, own, _, _ = replay(family, batch, i, 0, task=task)
        _, swapped, _, _ = replay(family, batch, i, 0, task=other)
        np.testing.assert_array_equal(batch.rewards[i, 0], own.astype(np.float32))
        diff = own - swapped  # -|v - v*| + |v - v'|, bounded by |v* - v'| = 2
        assert np.all(np.abs(diff) <= 2.0 + 1e-9) and np.any(np.abs(diff) > 0.1)


# ---------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("vectorized", [False, True])
def test_same_seed_same_batch_whatever_the_number_of_workers(vectorized):
    family = metarl.make_family("HalfCheetahVel-v0", horizon=20)
    tasks = family.sample_tasks(3, np.random.default_rng(3))
    batches = []
    for workers in (0, 1, 2):
        with make_sampler(family, workers, seed=11, vectorized=vectorized) as sampler:
            params = sampler.policy.params()
            first = sampler.sample(tasks, params, 5)
            second = sampler.sample(tasks[::-1], params, 2)  # 6 rows: rounded by thread count
            batches.append((first, second))
    for first, second in batches[1:]:
        assert_batches_equal(first, batches[0][0])
        assert_batches_equal(second, batches[0][1])
    assert not torch.equal(batches[0][0].rewards, batches[0][1].rewards)


def test_seed_stream_explicit_seed_and_resume():
    family = short("Navigation2D-v0", horizon=10)
    tasks = family.sample_tasks(2, np.random.default_rng(0))
    with make_sampler(family, seed=5) as a, make_sampler(family, seed=5) as b:
        first = a.sample(tasks, None, 3)
        assert_batches_equal(first, b.sample(tasks, None, 3))
        second = a.sample(tasks, None, 3)
        assert not torch.equal(first.actions, second.actions)
        # An explicit seed gives the same batch whatever came before, and leaves the
        # stream where it was.
        state = a.state_dict()
        fixed = a.sample(tasks, None, 3, seed=99)
        assert_batches_equal(fixed, b.sample(tasks, None, 3, seed=99))
        assert a.state_dict() == state
        # Resume: a fresh sampler loaded with the state continues the same stream.
        third = a.sample(tasks, None, 3)
    with make_sampler(family, seed=0) as c:
        c.load_state_dict(state)
        assert_batches_equal(third, c.sample(tasks, None, 3))


# ---------------------------------------------------------------------------- episode ends


def test_early_termination_is_masked_and_matches_the_env():
    family = short("HopperRandParams-v0", horizon=200)
    with make_sampler(family) as sampler:
        tasks = family.sample_tasks(2, np.random.default_rng(0))
        batch = sampler.sample(tasks, None, 4)
    assert batch.terminated.any(), "a random Hopper policy should fall within 200 steps"
    i, j = (int(k) for k in torch.nonzero(batch.terminated)[0])
    n = int(batch.lengths[i, j])
    assert n < 200
    assert torch.all(batch.mask[i, j, :n] == 1) and torch.all(batch.mask[i, j, n:] == 0)
    for name in ("rewards", "log_probs"):
        assert torch.all(getattr(batch, name)[i, j, n:] == 0)
    assert torch.all(batch.observations[i, j, n:] == 0)
    _, rewards, terminated, _ = replay(family, batch, i, j)
    assert terminated and len(rewards) == n
    np.testing.assert_array_equal(batch.rewards[i, j, :n], rewards.astype(np.float32))
    assert torch.all(batch.lengths[~batch.terminated] == 200)


def test_unstable_episodes_are_masked_not_fed_as_nan():
    family = FlakyFamily()
    tasks = [
        family.make_task(),
        family.make_task(blow_at=4),
        family.make_task(end_at=6),
    ]
    with make_sampler(family) as sampler:
        batch = sampler.sample(tasks, None, 2)
    for name in BATCH_FIELDS:
        value = getattr(batch, name)
        assert torch.isfinite(value.float()).all(), name
    assert batch.sim_unstable.tolist() == [[False, False], [True, True], [False, False]]
    assert torch.all(batch.mask[1] == 0), "an unstable episode is masked out entirely"
    assert torch.all(batch.returns()[1] == 0)
    assert batch.lengths[1].tolist() == [5, 5], "it ran 5 steps, the 5th blew up"
    assert batch.num_env_steps == 10 * 2 + 5 * 2 + 7 * 2
    assert batch.terminated.tolist() == [[False, False], [True, True], [True, True]]
    assert batch.lengths[2].tolist() == [7, 7] and torch.all(batch.mask[2, :, 7:] == 0)


@pytest.mark.parametrize("vectorized", [False, True])
@pytest.mark.parametrize("family_id", ["HalfCheetahVel-v0", "AntVel-v0"])
def test_mujoco_blow_up_inside_the_sampler_is_masked(family_id, vectorized):
    """Real MuJoCo instability (a huge velocity): the guard's rule applies in the sampler,
    whether the envs are stepped one by one or vectorized (HalfCheetah through MuJoCo's
    batch, Ant through threads over the envs' own MjData)."""
    family = short(family_id, horizon=10)
    with make_sampler(family, vectorized=vectorized) as sampler:
        tasks = family.sample_tasks(2, np.random.default_rng(0))
        sampler.sample(tasks, None, 1)  # builds the envs; the next call reuses them
        env = sampler._started_workers()._slots.envs[1].unwrapped
        reset_model = env.reset_model

        def poisoned_reset_model():
            obs = reset_model()
            env.data.qvel[:] = 1e30
            return obs

        env.reset_model = poisoned_reset_model
        batch = sampler.sample(tasks, None, 1)
    assert batch.sim_unstable.tolist() == [[False], [True]]
    assert batch.lengths[1, 0] == 1 and torch.all(batch.mask[1] == 0)
    assert torch.isfinite(batch.observations).all() and torch.isfinite(batch.rewards).all()
    assert batch.lengths[0, 0] == 10 or batch.terminated[0, 0]


# ---------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    family = short("Navigation2D-v0", horizon=5)
    other = metarl.make_family("HalfCheetahVel-v0")
    with make_sampler(family) as sampler:
        tasks = family.sample_tasks(2, np.random.default_rng(0))
        params = sampler.policy.params()
        wrong_shape = dict(params, **{"mean_net.0.weight": torch.zeros(3, 3)})
        with pytest.raises(ValueError, match=r"mean_net.0.weight.*shape"):
            sampler.sample(tasks, wrong_shape, 1)
        with pytest.raises(ValueError, match=r"params\[1\].*missing"):
            sampler.sample(tasks, [params, {"log_std": params["log_std"]}], 1)
        with pytest.raises(ValueError, match="3 parameter dicts given for 2 tasks"):
            sampler.sample(tasks, [params] * 3, 1)
        with pytest.raises(ValueError, match="NaN"):
            sampler.sample(tasks, dict(params, log_std=torch.full((2,), float("nan"))), 1)
        with pytest.raises(ValueError, match="belongs to HalfCheetahVel-v0"):
            sampler.sample([other.default_task()], params, 1)
        with pytest.raises(ValueError, match="episodes_per_task must be >= 1"):
            sampler.sample(tasks, params, 0)
        with pytest.raises(ValueError, match="episodes_per_task must be an int"):
            sampler.sample(tasks, params, 2.5)
        with pytest.raises(ValueError, match="tasks is empty"):
            sampler.sample([], params, 1)
        with pytest.raises(ValueError, match="not a Task"):
            sampler.sample([{"goal": (0, 0)}], params, 1)
        with pytest.raises(ValueError, match="list of Task"):
            sampler.sample(tasks[0], params, 1)
        with pytest.raises(ValueError, match="seed must be an int"):
            sampler.sample(tasks, params, 1, seed=-1)
        batch = sampler.sample(tasks, params, 1)  # still usable after rejected calls
        assert batch.num_tasks == 2
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(tasks, params, 1)
    with pytest.raises(ValueError, match="unknown sampler backend"):
        Sampler(family, backend="dask")
    with pytest.raises(ValueError, match="num_workers"):
        Sampler(family, num_workers=-1)
    with pytest.raises(ValueError, match="obs_dim=2"):
        Sampler(family, num_workers=0, policy=GaussianMLPPolicy(17, 6))
    with pytest.raises(metarl.UnknownFamilyError):
        Sampler("Navigation3D-v0")


# ---------------------------------------------------------------------------- processes


def _worker_pids(sampler: Sampler) -> list[int]:
    return [p.pid for p in sampler._started_workers()._procs]


def test_no_process_or_thread_left_after_close_and_a_second_sampler_works():
    family = FlakyFamily()
    tasks = [family.make_task(), family.make_task(end_at=3)]
    threads_before = set(threading.enumerate())
    first = make_sampler(family, num_workers=2)
    procs = list(first._started_workers()._procs)
    assert len(procs) == 2 and all(p.is_alive() for p in procs)
    a = first.sample(tasks, None, 3)
    first.close()
    first.close()  # idempotent
    assert not any(p.is_alive() for p in procs)
    assert mp.active_children() == []
    with make_sampler(family, num_workers=2) as second:  # reuse after close: no deadlock
        b = second.sample(tasks, None, 3)
        b2 = second.sample(tasks, None, 3)
    assert_batches_equal(a, b)
    assert not torch.equal(b.actions, b2.actions)
    assert mp.active_children() == []
    # A sampler dropped without close() stops its workers when garbage-collected.
    dropped = make_sampler(family, num_workers=1)
    procs = list(dropped._started_workers()._procs)
    del dropped
    gc.collect()
    assert not any(p.is_alive() for p in procs)
    assert set(threading.enumerate()) <= threads_before


def test_an_error_in_a_worker_reaches_the_caller_and_the_sampler_is_closed():
    family = FlakyFamily()
    tasks = [family.make_task(), family.make_task(raise_at=2)]
    sampler = make_sampler(family, num_workers=2)
    procs = list(sampler._started_workers()._procs)
    with pytest.raises(RuntimeError, match="raised at step 2 as asked") as info:
        sampler.sample(tasks, None, 1)
    assert any("sampler worker 1" in note for note in info.value.__notes__)
    assert not any(p.is_alive() for p in procs)
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(tasks, None, 1)


def _dying_tasks(family):
    """Three tasks; the second's env kills its worker at step 4 (when a token is planted)."""
    return [family.make_task(), family.make_task(die_at=4), family.make_task(end_at=6)]


def test_a_worker_killed_mid_batch_is_replaced_and_the_batch_is_the_same(tmp_path, monkeypatch):
    family = FlakyFamily()
    tasks = _dying_tasks(family)
    monkeypatch.delenv("METARL_FLAKY_DIE_TOKENS", raising=False)
    with make_sampler(family, 0, seed=3) as local:  # no tokens: nothing dies
        expected = [local.sample(tasks, None, 2), local.sample(tasks, None, 2)]
    monkeypatch.setenv("METARL_FLAKY_DIE_TOKENS", str(tmp_path))
    with make_sampler(family, 2, seed=3) as sampler:
        pids = _worker_pids(sampler)
        plant_death_tokens(tmp_path, 1)
        with pytest.warns(RuntimeWarning, match="replaced it and re-ran its share"):
            first = sampler.sample(tasks, None, 2)
        assert not list(tmp_path.iterdir())  # the token was used: a worker did die
        assert _worker_pids(sampler) != pids and mp.active_children()
        assert_batches_equal(first, expected[0])
        assert_batches_equal(sampler.sample(tasks, None, 2), expected[1])  # stream goes on
    assert mp.active_children() == []


def test_a_worker_that_keeps_dying_gives_a_clear_error(tmp_path, monkeypatch):
    family = FlakyFamily()
    monkeypatch.setenv("METARL_FLAKY_DIE_TOKENS", str(tmp_path))
    plant_death_tokens(tmp_path, 10)  # every replacement dies at the same step again
    sampler = make_sampler(family, 2)
    with (
        pytest.warns(RuntimeWarning, match="replaced it"),
        pytest.raises(metarl.sampling.WorkerError, match=r"died 4 times in one batch.*gives up"),
    ):
        sampler.sample(_dying_tasks(family), None, 1)
    assert len(list(tmp_path.iterdir())) == 10 - 4
    assert mp.active_children() == []  # the sampler closed itself
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(_dying_tasks(family), None, 1)


def test_a_worker_killed_between_batches_is_replaced():
    family = FlakyFamily()
    tasks = [family.make_task(), family.make_task(end_at=3)]
    with make_sampler(family, 0) as local:
        expected = local.sample(tasks, None, 2)
    with make_sampler(family, num_workers=2) as sampler:
        assert not sampler.started and sampler.num_workers == 2
        procs = sampler._started_workers()._procs
        procs[0].kill()
        procs[0].join()
        with pytest.warns(RuntimeWarning, match="worker 0"):
            assert_batches_equal(sampler.sample(tasks, None, 2), expected)
    assert mp.active_children() == []


# ---------------------------------------------------------------------------- env reuse


def test_envs_are_reused_and_retasked_across_calls():
    family = short("HalfCheetahVel-v0", horizon=5)
    tasks = family.sample_tasks(4, np.random.default_rng(0))
    with make_sampler(family) as sampler:
        sampler.sample(tasks[:2], None, 2)
        slots = sampler._started_workers()._slots
        built = {id(env) for env in slots.envs}
        batch = sampler.sample(tasks[2:], None, 2)  # new tasks: same envs, retasked
        assert {id(env) for env in slots.envs} == built
        assert [env.unwrapped.velocity for env in slots.envs] == [
            t.velocity for t in tasks[2:] for _ in range(2)
        ]
    for i in range(2):
        _, rewards, _, _ = replay(family, batch, i, 1)
        np.testing.assert_array_equal(batch.rewards[i, 1], rewards.astype(np.float32))
