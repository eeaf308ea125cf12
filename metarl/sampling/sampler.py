"""The batched multi-task sampler: every episode of every task, in lock-step.

One call samples ``episodes_per_task`` episodes of each task. All of them advance together:
at each time step the sampler evaluates the policy on the observations of every running
episode in one batched forward per half of the tasks (each task with its own parameters, as
one batched matrix product), draws the actions, and steps every episode's env with them.
Envs whose class names a vector step (:mod:`metarl.array_step`; every bundled family) are
stepped together in this process: a MuJoCo family's :class:`~metarl.mujoco.VectorStep` with
its physics on threads (:mod:`metarl.mujoco.vector_step`), a pure-NumPy family's
(Navigation2D's) :class:`~metarl.array_step.ArrayStep` in one NumPy call per time step.
Others are stepped through their Gymnasium ``step`` in worker processes
(:mod:`metarl.sampling.workers`). Both give the same batch to the bit.

**Lanes.** A MuJoCo family stepped on two threads or more runs as two lanes, one per half of
the tasks, each on a thread of its own with its own envs: while one lane's physics runs
(MuJoCo releases the GIL), the other's policy forward and bookkeeping do (they hold it).
Otherwise the halves share one loop. The halves are why the forward is per half: the batch
is the same to the bit either way (see :class:`_Lane`).

Reproducibility: every random draw is derived from ``seed`` and the number of calls made so
far (or from an explicit per-call ``seed``), never from the number of workers: each episode
slot of a call is reset with its own seed, and the action noise of each time step is drawn
for the whole batch from a seed of its own (the streams: :mod:`metarl.seeds`). The same
seed gives a bit-identical batch with ``num_workers`` 0, 1 or 8.
"""

from __future__ import annotations

import concurrent.futures
import threading
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl import seeds
from metarl.array_step import vector_step_of
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy, ParameterDictPolicy
from metarl.registry import make_family
from metarl.sampling.backends import (
    Lanes,
    Workers,
    WorkerSpec,
    default_num_workers,
    get_backend,
)
from metarl.sampling.episode_batch import EpisodeBatch
from metarl.sampling.recurrent import RecurrentState
from metarl.task import Task
from metarl.torch_threads import torch_threads

Params = Mapping[str, torch.Tensor]
__all__ = ["Sampler", "check_seed", "default_num_workers", "inspect_family"]


def inspect_family(family: TaskFamily) -> tuple[int, int, bool]:
    """``(obs_dim, act_dim, vectorizable)`` of the family's envs, checking they are flat
    boxes; vectorizable: whether their class names a vector step (a
    :class:`~metarl.mujoco.VectorStep` or an :class:`~metarl.array_step.ArrayStep`), so the
    local backend steps them in this process."""
    env = family.make_env(family.default_task())
    try:
        obs_space, act_space = env.observation_space, env.action_space
        vectorizable = vector_step_of(env) is not None
    finally:
        env.close()
    for name, space in (("observation", obs_space), ("action", act_space)):
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(
                f"{family.id}: the sampler needs Box {name} spaces (continuous control), got "
                f"{space}"
            )
    if len(act_space.shape) != 1:
        raise ValueError(f"{family.id}: actions must be 1-D, got shape {act_space.shape}")
    return int(np.prod(obs_space.shape)), int(act_space.shape[0]), vectorizable


class Sampler:
    """Samples episodes of many tasks of one family at once, in lock-step, with one batched
    policy forward per time step for each half of the tasks.

    Args:
        family: a :class:`~metarl.TaskFamily` or a registered family id.
        backend: a registered backend's name (:mod:`metarl.sampling.backends`):
            ``"local"``: envs stepped on this machine's cores; ``"ray"``: envs stepped by Ray
            actors, on a Ray cluster (``pip install "metarl[ray]"``; see
            :mod:`metarl.sampling.ray_workers`). Both give the same batches.
        num_workers: how many workers step the envs in parallel. Local: physics threads in
            this process when the envs are vectorized (a pure-NumPy family's
            :class:`~metarl.array_step.ArrayStep` uses none), worker processes otherwise; ``None``
            uses every core this process may use, ``0`` steps every env on the calling
            thread. Ray: actors, one CPU each; ``None`` starts one per CPU of the cluster.
        seed: the root of every random draw (env resets and action noise).
        policy: the policy whose parameters :meth:`sample` receives; by default a
            :class:`~metarl.policies.GaussianMLPPolicy` with MAML's (64, 64) tanh network for
            the family's observation and action sizes. A recurrent one
            (:class:`~metarl.policies.GaussianGRUPolicy`) keeps a hidden state per episode
            slot: see ``state`` in :meth:`sample`.
        vectorized: step the envs through their class's vector step (every bundled family
            has one), in this process: a :class:`~metarl.mujoco.VectorStep` steps MuJoCo's
            physics on threads and computes every env's observation and reward at once (1.3x
            (Ant) to 2.3x (HalfCheetah) the speed of worker processes on 2 cores); an
            :class:`~metarl.array_step.ArrayStep` (Navigation2D) advances every env in one
            NumPy call. The same batch to the bit. ``None`` (default) does when the family's
            envs support it; ``False`` steps each env through its Gymnasium ``step`` in worker
            processes.
        address: the cluster a backend with one joins (Ray: ``"auto"``, ``"ray://head:10001"``;
            None: ``RAY_ADDRESS`` or a local instance).

    Workers (processes, threads, actors) start when the sampler first samples, so building
    one (or loading a checkpoint) costs nothing until it is used. A worker that dies mid-batch
    is replaced and its share re-run (:mod:`metarl.sampling.workers`). Use it as a context
    manager, or call :meth:`close`, to stop the workers::

        with metarl.Sampler("HalfCheetahVel-v0", seed=0) as sampler:
            tasks = sampler.family.sample_tasks(40, np.random.default_rng(0))
            batch = sampler.sample(tasks, sampler.policy.params(), episodes_per_task=20)
            print(batch.returns().mean())
    """

    def __init__(
        self,
        family: TaskFamily | str,
        backend: str = "local",
        num_workers: int | None = None,
        seed: int = 0,
        *,
        policy: ParameterDictPolicy | None = None,
        vectorized: bool | None = None,
        address: str | None = None,
    ) -> None:
        spec = get_backend(backend)
        if isinstance(family, str):
            family = make_family(family)
        if not isinstance(family, TaskFamily):
            raise TypeError(
                f"family must be a TaskFamily or a registered id, got {type(family).__name__}"
            )
        if num_workers is None:
            num_workers = spec.default_workers()
        if num_workers is not None and (
            isinstance(num_workers, bool)
            or not isinstance(num_workers, int)
            or num_workers < spec.min_workers
        ):
            raise ValueError(
                f"num_workers must be an int >= {spec.min_workers} (or None) with the "
                f"{backend!r} backend, got {num_workers!r}"
            )
        if address is not None and not isinstance(address, str):
            raise ValueError(f"address must be a string (or None), got {address!r}")
        spec.check()
        self.seed = check_seed(seed)
        self.family = family
        self.backend = backend
        self.obs_dim, self.act_dim, vectorizable = inspect_family(family)
        if vectorized is None:
            vectorized = vectorizable
        elif vectorized and not vectorizable:
            raise ValueError(
                f"{family.id}: its env class names no vector_step (a "
                f"metarl.mujoco.VectorStep or metarl.array_step.ArrayStep), so it cannot be "
                f"vectorized; use vectorized=None or False"
            )
        #: Whether the envs are stepped through their vector step (see ``vectorized``).
        self.vectorized = bool(vectorized)
        if policy is None:
            policy = GaussianMLPPolicy(self.obs_dim, self.act_dim)
        if (policy.obs_dim, policy.act_dim) != (self.obs_dim, self.act_dim):
            raise ValueError(
                f"policy is for obs_dim={policy.obs_dim}, act_dim={policy.act_dim}; "
                f"{family.id} has obs_dim={self.obs_dim}, act_dim={self.act_dim}"
            )
        self.policy = policy
        self.calls = 0  # sample() calls that drew from the seed stream (for resume)
        self.address = address
        self._backend = spec
        self._worker_spec = WorkerSpec(
            family, self.obs_dim, self.act_dim, num_workers, self.vectorized, address
        )
        self._workers: Workers | None = None
        #: Threads running the lanes of a batch (see Lanes), made on first use.
        self._lane_pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._finalizer: weakref.finalize | None = None

    @property
    def num_workers(self) -> int | None:
        """Workers in use: physics threads if :attr:`vectorized`, else worker processes or
        actors (0: every env is stepped on the calling thread). Before the first sample, the
        number asked for (None: Ray's one per CPU of the cluster, known once started)."""
        if self._workers is not None:
            return self._workers.num_workers
        return self._worker_spec.num_workers

    @property
    def started(self) -> bool:
        """Whether the workers are running (they start at the first :meth:`sample`)."""
        return self._workers is not None

    def _started_workers(self) -> Workers:
        """The workers, started now if they are not yet."""
        if self._closed:
            raise RuntimeError("this sampler is closed; create a new one")
        if self._workers is None:
            self._workers = self._backend.start(self._worker_spec)
            self._finalizer = weakref.finalize(self, self._workers.close)
        return self._workers

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the workers and close every env. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        self._workers = None
        if self._lane_pool is not None:
            self._lane_pool.shutdown()
            self._lane_pool = None
        self._closed = True

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint needs to continue the same stream of batches."""
        return {"seed": self.seed, "calls": self.calls}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed = check_seed(state["seed"])
        calls = state["calls"]
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise ValueError(f"calls must be an int >= 0, got {calls!r}")
        self.calls = calls

    def __repr__(self) -> str:
        return (
            f"Sampler({self.family.id!r}, backend={self.backend!r}, "
            f"num_workers={self.num_workers}, seed={self.seed}, vectorized={self.vectorized})"
        )

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        tasks: Sequence[Task],
        params: Params | Sequence[Params] | None,
        episodes_per_task: int,
        *,
        seed: int | None = None,
        deterministic: bool = False,
        state: RecurrentState | None = None,
    ) -> EpisodeBatch:
        """Sample ``episodes_per_task`` episodes of every task.

        Args:
            tasks: tasks of this sampler's family.
            params: the policy parameters: one dict for every task, a list with one dict per
                task (e.g. each task's adapted parameters), or ``None`` for the policy's own.
            episodes_per_task: episodes per task (>= 1).
            seed: draw this call's randomness from ``seed`` instead of the sampler's stream
                (which then does not advance): the same ``seed`` gives the same batch whatever
                was sampled before (for evaluation).
            deterministic: act with the policy's mean instead of sampling.
            state: a recurrent policy's state per slot to start from (``[tasks,
                episodes_per_task, ...]``; the ``final_state`` of the batch of the trial's
                previous episode), or None to start a trial (zeros). The batch's
                ``final_state`` continues the trial (:mod:`metarl.sampling.recurrent`).
        """
        if self._closed:
            raise RuntimeError("this sampler is closed; create a new one")
        tasks = self._check_tasks(tasks)
        if isinstance(episodes_per_task, bool) or not isinstance(episodes_per_task, int):
            raise ValueError(f"episodes_per_task must be an int >= 1, got {episodes_per_task!r}")
        if episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
        params = self._check_params(params, len(tasks))
        state = self._check_state(state, len(tasks), episodes_per_task)
        if seed is None:
            root = seeds.sampler_call(self.seed, self.calls)
            self.calls += 1
        else:
            root = seeds.sampler_batch(check_seed(seed))
        try:
            workers = self._started_workers()
            with torch_threads(1):  # see metarl.torch_threads
                return self._run(
                    workers, tasks, params, episodes_per_task, root, deterministic, state
                )
        except BaseException:
            # A failure mid-episode (a worker died, Ctrl-C) leaves the workers out of step:
            # stop them rather than risk a later call reading a stale reply.
            self.close()
            raise

    def _check_state(
        self, state: RecurrentState | None, n_tasks: int, episodes: int
    ) -> RecurrentState | None:
        """The state a recurrent policy starts from (zeros for None); None for another."""
        if not self.policy.recurrent:
            if state is not None:
                raise ValueError(
                    f"state is for a recurrent policy; this sampler's "
                    f"{type(self.policy).__name__} has none"
                )
            return None
        hidden_size, act_dim = self.policy.hidden_size, self.act_dim  # type: ignore[attr-defined]
        if state is None:
            return RecurrentState.initial(n_tasks, episodes, hidden_size, act_dim)
        if not isinstance(state, RecurrentState):
            raise ValueError(
                f"state must be a metarl.sampling.RecurrentState (a batch's final_state), got "
                f"{type(state).__name__}"
            )
        state.check(n_tasks, episodes, hidden_size, act_dim)
        return state

    def _check_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        if isinstance(tasks, Task) or not isinstance(tasks, Sequence):
            raise ValueError("tasks must be a list of Task (one per row of the batch)")
        if not tasks:
            raise ValueError("tasks is empty; give at least one task")
        for i, task in enumerate(tasks):
            if not isinstance(task, Task):
                raise ValueError(
                    f"tasks[{i}] is a {type(task).__name__}, not a Task; build tasks with "
                    f"family.make_task(...) or family.sample_tasks(...)"
                )
            if task.family != self.family.id:
                raise ValueError(
                    f"tasks[{i}] belongs to {task.family}; this sampler samples {self.family.id}"
                )
        return list(tasks)

    def _check_params(
        self, params: Params | Sequence[Params] | None, num_tasks: int
    ) -> Params | list[Params]:
        if params is None:
            return {k: v.detach() for k, v in self.policy.params().items()}
        if isinstance(params, Mapping):
            return self._checked(params, "params")
        if not isinstance(params, Sequence):
            raise ValueError(
                f"params must be a dict of tensors or a list of them, got {type(params).__name__}"
            )
        if len(params) != num_tasks:
            raise ValueError(
                f"{len(params)} parameter dicts given for {num_tasks} tasks; give one per task "
                f"(or a single dict for all)"
            )
        return [self._checked(p, f"params[{i}]") for i, p in enumerate(params)]

    def _checked(self, params: Params, name: str) -> Params:
        """``params`` detached, after checking names, shapes and finiteness."""
        try:
            self.policy.check_params(params)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        _check_finite(params, name)
        return {k: v.detach() for k, v in params.items()}

    @torch.no_grad()
    def _run(
        self,
        workers: Workers,
        tasks: list[Task],
        params: Params | list[Params],
        episodes: int,
        root: np.random.SeedSequence,
        deterministic: bool,
        state: RecurrentState | None = None,
    ) -> EpisodeBatch:
        n_tasks, horizon = len(tasks), self.family.horizon
        env_root, noise_root = seeds.batch_streams(root)
        reset_seeds = env_root.generate_state(n_tasks * episodes, np.uint32).astype(np.int64)
        noise_seeds = None if deterministic else seeds.action_noise(noise_root, horizon)
        # One slice of parameters per task, stacked once per call (one dict for all tasks:
        # expanded, not copied). The params were checked once per call; acting_forward
        # takes them as they are.
        if isinstance(params, list):
            acting_params = self.policy.stack_params(params)
        else:
            acting_params = {k: v.unsqueeze(0).expand(n_tasks, *v.shape) for k, v in params.items()}
        out = _Buffers(n_tasks, episodes, horizon, self.obs_dim, self.act_dim)
        out.state = None if state is None else state.clone()
        slot_tasks = [task for task in tasks for _ in range(episodes)]
        halves = task_halves(n_tasks)
        lanes = None
        if len(halves) > 1 and isinstance(workers, Lanes):
            lanes = workers.lanes(halves)
        if lanes is None:  # one loop over every task, two forwards per step (one per half)
            plan = [(slice(0, n_tasks), workers, halves)]
        else:  # a loop per half, on a thread each
            plan = [(half, lane, [half]) for half, lane in zip(halves, lanes, strict=True)]
        runs = [
            _Lane(
                rows,
                lane,
                slot_tasks[rows.start * episodes : rows.stop * episodes],
                reset_seeds[rows.start * episodes : rows.stop * episodes],
                self.policy,
                [
                    (group, {k: v[group].clone() for k, v in acting_params.items()})
                    for group in groups
                ],
                noise_seeds,
                out,
            )
            for rows, lane, groups in plan
        ]
        if len(runs) == 1:
            runs[0].run()
        else:
            self._run_concurrently(runs)
        out.mask[out.unstable] = 0.0
        if out.state is not None:  # every slot's episode ended: the next call starts one
            out.state.done.fill_(1.0)
        return EpisodeBatch(
            tasks=tuple(tasks),
            observations=out.observations,
            actions=out.actions,
            rewards=out.rewards,
            log_probs=out.log_probs,
            mask=out.mask,
            lengths=out.lengths,
            terminated=out.terminated,
            sim_unstable=out.unstable,
            reset_seeds=torch.from_numpy(reset_seeds).view(n_tasks, episodes),
            final_state=out.state,
        )

    def _run_concurrently(self, runs: list[_Lane]) -> None:
        """Run each lane on a thread of its own until all have finished; the first error
        (or a Ctrl-C) stops the others at their next time step, then is raised."""
        if self._lane_pool is None:
            self._lane_pool = ThreadPoolExecutor(len(runs), thread_name_prefix="metarl-lane")
        abort = threading.Event()
        for run in runs:
            run.abort = abort
        futures = [self._lane_pool.submit(run.run) for run in runs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            abort.set()
            concurrent.futures.wait(futures)
            raise


class _Buffers:
    """The tensors of a batch under construction, ``[tasks, episodes, time, ...]``; each lane
    writes the rows of its own tasks."""

    def __init__(self, n_tasks: int, episodes: int, horizon: int, obs_dim: int, act_dim: int):
        shape = (n_tasks, episodes, horizon)
        self.observations = torch.zeros(*shape, obs_dim)
        self.actions = torch.zeros(*shape, act_dim)
        self.rewards = torch.zeros(shape)
        self.log_probs = torch.zeros(shape)
        self.mask = torch.zeros(shape)
        self.lengths = torch.zeros(n_tasks, episodes, dtype=torch.int64)
        self.terminated = torch.zeros(n_tasks, episodes, dtype=torch.bool)
        self.unstable = torch.zeros(n_tasks, episodes, dtype=torch.bool)
        #: A recurrent policy's state, updated in place as the slots step.
        self.state: RecurrentState | None = None


class _Lane:
    """The lock-step loop over time for the episodes of one contiguous range of tasks
    (``rows``), written into the batch's buffers: reset, then at each step the policy's
    forward for every episode of the range, its actions, one step of its envs.

    The forward is computed per half of the batch's tasks (:func:`task_halves`), as given in
    ``groups``: whether the halves run in one loop (two forwards per step) or in two
    concurrent lanes (one each, :class:`~metarl.sampling.backends.Lanes`), every matrix
    product has the same shape and its operands the same alignment in memory (each half's
    observations and parameters are tensors of their own), so the batch is the same to the
    bit. (MKL rounds a row of a small matrix product differently with the number of rows,
    the number of matrices in a batched product and the operands' alignment: the rows of a
    half computed alone would not be those of the whole batch.) The
    action noise of step ``t`` is drawn for the whole batch from its own seed
    (``noise_seeds[t]``) and sliced, whoever draws it.
    """

    def __init__(
        self,
        rows: slice,
        workers: Workers,
        slot_tasks: list[Task],
        reset_seeds: np.ndarray,
        policy: ParameterDictPolicy,
        groups: list[tuple[slice, Params]],
        noise_seeds: np.ndarray | None,
        out: _Buffers,
    ) -> None:
        self.rows, self.workers = rows, workers
        self.slot_tasks, self.reset_seeds = slot_tasks, reset_seeds
        self.policy = policy
        #: (task rows within this lane, their stacked parameters), for each forward.
        self.groups = [
            (slice(group.start - rows.start, group.stop - rows.start), params)
            for group, params in groups
        ]
        self.noise_seeds, self.out = noise_seeds, out
        #: Set by another lane's failure: stop at the next time step.
        self.abort: threading.Event | None = None

    def forward(
        self, obs: torch.Tensor, state: RecurrentState | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Means and standard deviations ``[tasks, episodes, act_dim]`` of this lane, and a
        recurrent policy's new hidden states (given its ``state`` of this lane's slots)."""
        parts = []
        for group, params in self.groups:
            # One group: obs is a new tensor, aligned as any other; two: copies of the halves,
            # aligned as a lane's own obs would be. A state is always copied for the same.
            group_obs = obs if len(self.groups) == 1 else obs[group].clone()
            if state is None:
                mean, log_std = self.policy.acting_forward(params, group_obs, stacked=True)
                parts.append((mean, log_std, None))
            else:
                inputs = state.rows(group).clone().tensors()
                parts.append(self.policy.acting_step(params, group_obs, *inputs))
        if len(parts) == 1:
            mean, log_std, hidden = parts[0]
        else:
            mean = torch.cat([p[0] for p in parts])
            log_std = torch.cat([p[1] for p in parts])
            hidden = None if state is None else torch.cat([p[2] for p in parts])
        return mean, log_std.exp().unsqueeze(1).expand_as(mean), hidden

    def run(self) -> None:
        """The loop, on the calling thread; PyTorch's thread count and grad mode are set per
        thread, so both are set here (one thread: see :mod:`metarl.torch_threads`)."""
        with torch.no_grad(), torch_threads(1):
            self._loop()

    def _loop(self) -> None:
        out, rows = self.out, self.rows
        n_tasks, episodes, horizon = rows.stop - rows.start, out.lengths.shape[1], out.mask.shape[2]
        full_shape = (out.lengths.shape[0], episodes, out.actions.shape[-1])
        observations, actions = out.observations[rows], out.actions[rows]
        rewards, log_probs, mask = out.rewards[rows], out.log_probs[rows], out.mask[rows]
        lengths, terminated, unstable = out.lengths[rows], out.terminated[rows], out.unstable[rows]
        running = torch.ones(n_tasks, episodes, dtype=torch.bool)
        state = None if out.state is None else out.state.rows(rows)  # views: updated in place
        generator = torch.Generator()
        obs = self.workers.reset(self.slot_tasks, self.reset_seeds.tolist())
        all_running = True
        for t in range(horizon):
            if self.abort is not None and self.abort.is_set():
                return
            obs_t = torch.from_numpy(obs).to(torch.float32).view(n_tasks, episodes, -1)
            mean, std, hidden = self.forward(obs_t, state)
            if self.noise_seeds is None:
                act = mean
            else:
                generator.manual_seed(int(self.noise_seeds[t]))
                act = mean + std * torch.randn(full_shape, generator=generator)[rows]
            if not torch.isfinite(act).all():
                raise ValueError(
                    f"the policy produced non-finite actions at step {t} (observations "
                    f"finite: {bool(torch.isfinite(obs_t).all())}); check the parameters"
                )
            # (std > 0 and finite by construction: no argument validation per step)
            logp = torch.distributions.Normal(mean, std, validate_args=False).log_prob(act)
            logp = logp.sum(-1)
            if all_running:  # (the common case: no episode has ended yet)
                observations[:, :, t] = obs_t
                actions[:, :, t] = act
                log_probs[:, :, t] = logp
                mask[:, :, t] = 1.0
            else:
                live = running.unsqueeze(-1)
                observations[:, :, t] = torch.where(live, obs_t, 0.0)
                actions[:, :, t] = torch.where(live, act, 0.0)
                log_probs[:, :, t] = torch.where(running, logp, 0.0)
                mask[:, :, t] = running.float()
            lengths += running
            obs, rew, term, trunc, bad = self.workers.step(
                act.reshape(n_tasks * episodes, -1).numpy()
            )
            rewards[:, :, t] = torch.from_numpy(rew).to(torch.float32).view(n_tasks, episodes)
            if state is not None:  # the slots that acted carry this step into the next
                _carry(state, running, hidden, act, rewards[:, :, t])
            term_t = torch.from_numpy(term).view(n_tasks, episodes)
            done = term_t | torch.from_numpy(trunc).view(n_tasks, episodes)
            unstable |= torch.from_numpy(bad).view(n_tasks, episodes)
            terminated |= term_t & running
            running &= ~done
            all_running = bool(running.all())
            if not all_running and not running.any():
                break


def _carry(
    state: RecurrentState,
    acted: torch.Tensor,
    hidden: torch.Tensor | None,
    actions: torch.Tensor,
    rewards: torch.Tensor,
) -> None:
    """After a step: the slots that acted (``acted``, ``[tasks, episodes]``) take their new
    hidden state, and their action and reward become the next step's inputs, with the done
    flag cleared; the others (their episode over) keep theirs. In place."""
    slots = acted.unsqueeze(-1)
    state.hidden.copy_(torch.where(slots, hidden, state.hidden))
    state.prev_action.copy_(torch.where(slots, actions, state.prev_action))
    state.prev_reward.copy_(torch.where(acted, rewards, state.prev_reward))
    state.done.copy_(torch.where(acted, 0.0, state.done))


def task_halves(n_tasks: int) -> list[slice]:
    """The batch's tasks in two halves (one range for a single task): the sampler computes
    the policy's forward per half, and steps the halves concurrently where the workers can
    (see :class:`_Lane`)."""
    if n_tasks < 2:
        return [slice(0, n_tasks)]
    middle = (n_tasks + 1) // 2
    return [slice(0, middle), slice(middle, n_tasks)]


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a ``ValueError`` unless it is an int >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


def _check_finite(params: Params, name: str) -> None:
    for key, value in params.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"{name}[{key!r}] contains NaN or infinity")
