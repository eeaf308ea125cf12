"""Where envs run when they are not vectorized: in the sampler's process, or in worker
processes (one per core).

Vectorized families (:mod:`metarl.array_step`: every bundled family) run in the sampler's
process, MuJoCo's physics on threads, a pure-NumPy family's step in one NumPy call. Any other
env is stepped through its Gymnasium ``step``, whose Python (the observation, the reward, the
guard) holds the GIL, so threads would not scale: processes do.
Each worker steps a contiguous share of the episode slots; the sampler sends actions and gets
arrays back through a pipe, once per time step.

A worker that dies mid-batch (killed, out of memory, a segfault in an env's C code) is
replaced: a new worker is started, replays its share of the batch from the reset (same tasks,
same seeds, the same actions; the envs are deterministic given those), and the call returns
the same batch as if nothing had happened. A batch that loses workers more than
:attr:`SharedWorkers.max_restarts` times raises :class:`WorkerError`.

Workers are started with ``spawn`` (safe with PyTorch's threads, and the same on every OS), so
the family must pickle: families registered from importable modules do; a family class
defined inside a function does not (use ``num_workers=0`` for those).
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from metarl.array_step import vector_step_of
from metarl.family import TaskFamily
from metarl.mujoco.vector_step import VectorStep
from metarl.sampling.env_slots import EnvSlots
from metarl.task import Task

#: Seconds between liveness checks while waiting for a worker.
_POLL_SECONDS = 1.0
#: Seconds ``close()`` waits for a worker to exit before terminating it.
_JOIN_SECONDS = 10.0


class WorkerError(RuntimeError):
    """A sampler worker process died or could not be reached."""


def _worker_main(conn: Connection, family: TaskFamily, obs_dim: int, act_dim: int) -> None:
    """A worker's loop: serve ``reset``/``step``/``close`` requests on ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    slots = EnvSlots(family, obs_dim, act_dim)
    conn.send(("ok", "ready", None))
    try:
        while True:
            command, payload = conn.recv()
            if command == "close":
                break
            try:
                result = getattr(slots, command)(*payload)
            except Exception as err:  # sent to the parent, which re-raises it
                conn.send(("error", _picklable(err), traceback.format_exc()))
            else:
                conn.send(("ok", result, None))
    except (EOFError, KeyboardInterrupt):  # the parent went away
        pass
    finally:
        slots.close()
        conn.close()


def _picklable(err: Exception) -> Exception:
    """``err`` if it survives a pickle round trip (to re-raise it as is), else a RuntimeError."""
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


class InProcessWorkers:
    """All envs stepped in the sampler's own process: no processes, no pickling. Either on
    the calling thread, each through its own ``step`` (``num_workers=0``: the easiest to
    debug, and what a family that does not pickle needs), or vectorized through their vector
    step (:mod:`metarl.array_step`), MuJoCo's physics on ``num_threads`` threads.

    Vectorized MuJoCo envs on two threads or more are also stepped in two lanes
    (:meth:`lanes`): the tasks split in two halves, each half's envs stepped by a thread of
    its own with half of the physics threads, so that the sampler's policy forward and
    bookkeeping for one half run while the other half's physics does.
    """

    #: Lanes for vectorized MuJoCo envs: two (each lane's Python runs while the other's
    #: physics does; more lanes would only queue for the GIL).
    num_lanes = 2

    def __init__(
        self,
        family: TaskFamily,
        obs_dim: int,
        act_dim: int,
        vectorized: bool = False,
        num_threads: int = 0,
    ) -> None:
        self.family, self.obs_dim, self.act_dim = family, obs_dim, act_dim
        self.vectorized, self.num_threads = vectorized, num_threads
        self.num_workers = num_threads if vectorized else 0
        self._slots = EnvSlots(
            family, obs_dim, act_dim, vectorized=vectorized, num_threads=num_threads
        )
        self._lanes: list[EnvSlots] = []
        self._steps_physics: bool | None = None  # whether the vector step is MuJoCo's

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        return self._slots.reset(tasks, seeds)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        return self._slots.step(actions)

    def lanes(self, groups: Sequence[slice]) -> list[EnvSlots] | None:
        """Envs for each of the two groups of tasks (each with its own envs and half of the
        physics threads), for vectorized MuJoCo envs on two threads or more; None otherwise
        (a pure-NumPy vector step has no physics to overlap)."""
        if not self.vectorized or self.num_threads < 2 or len(groups) != self.num_lanes:
            return None
        if self._steps_physics is None:
            env = self.family.make_env(self.family.default_task())
            try:
                step = vector_step_of(env)
            finally:
                env.close()
            self._steps_physics = step is not None and issubclass(step, VectorStep)
        if not self._steps_physics:
            return None
        if not self._lanes:
            threads = [len(share) for share in np.array_split(range(self.num_threads), 2)]
            self._lanes = [
                EnvSlots(self.family, self.obs_dim, self.act_dim, vectorized=True, num_threads=n)
                for n in threads
            ]
        return list(self._lanes)

    def close(self) -> None:
        self._slots.close()
        for lane in self._lanes:
            lane.close()
        self._lanes = []


class SharedWorkers(abc.ABC):
    """Workers that each step a contiguous share of the episode slots (subclasses say how a
    request reaches a worker, and how a dead one is replaced): the split, putting the replies
    back together, and recovering from a dead worker by replay, in one place."""

    #: Worker deaths one batch (a reset and its steps) survives before it gives up.
    max_restarts = 3

    num_workers: int
    _shares: list[slice]

    @abc.abstractmethod
    def _send(self, i: int, command: str, payload: tuple[Any, ...]) -> None:
        """Send worker i a request without waiting (:class:`WorkerError` if it is gone)."""

    @abc.abstractmethod
    def _receive(self, i: int) -> Any:
        """Worker i's reply to its last request: :class:`WorkerError` if the worker died,
        the env's own exception if the request raised there."""

    @abc.abstractmethod
    def _restart(self, i: int) -> None:
        """Replace worker i by a new one, ready for requests (its envs not yet reset)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the workers."""

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        bounds = np.linspace(0, len(tasks), self.num_workers + 1).round().astype(int)
        self._shares = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self._reset_payloads = [(list(tasks[s]), list(seeds[s])) for s in self._shares]
        self._sent_actions: list[np.ndarray] = []  # what a replacement worker replays
        self._restarts = 0
        return np.concatenate(self._call("reset", self._reset_payloads))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        actions = np.array(actions)  # a copy: the replay must see these very actions
        replies = self._call("step", [(actions[s],) for s in self._shares])
        self._sent_actions.append(actions)
        return tuple(np.concatenate(parts) for parts in zip(*replies, strict=True))

    def _call(self, command: str, payloads: list[tuple[Any, ...]]) -> list[Any]:
        """Send every worker its request, then collect every reply (so they run at once);
        a worker found dead is replaced and its share replayed."""
        dead: dict[int, WorkerError] = {}
        for i, payload in enumerate(payloads):
            try:
                self._send(i, command, payload)
            except WorkerError as err:
                dead[i] = err
        # Receive from all before raising, so no reply is left in a pipe for the next call.
        replies: list[Any] = [None] * len(payloads)
        first_error = None
        for i in range(len(payloads)):
            if i in dead:
                continue
            try:
                replies[i] = self._receive(i)
            except WorkerError as err:
                dead[i] = err
            except Exception as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
        for i, err in sorted(dead.items()):
            replies[i] = self._replace(i, err, command, payloads[i])
        return replies

    def _replace(self, i: int, err: WorkerError, command: str, payload: tuple[Any, ...]) -> Any:
        """Start a new worker i, replay its share of the batch so far, then answer
        ``command``; :class:`WorkerError` once the batch has lost too many workers."""
        while True:
            self._restarts += 1
            if self._restarts > self.max_restarts:
                raise WorkerError(
                    f"{err}. Sampler workers died {self._restarts} times in one batch "
                    f"(at most {self.max_restarts} are replaced), so the sampler gives up: "
                    f"is an env crashing its process, or the machine out of memory?"
                )
            warnings.warn(
                f"{err}; the sampler replaced it and re-ran its share of the batch",
                RuntimeWarning,
                stacklevel=2,
            )
            try:
                self._restart(i)
                if command != "reset":
                    self._ask(i, "reset", self._reset_payloads[i])
                    for actions in self._sent_actions:
                        self._ask(i, "step", (actions[self._shares[i]],))
                return self._ask(i, command, payload)
            except WorkerError as again:
                err = again

    def _ask(self, i: int, command: str, payload: tuple[Any, ...]) -> Any:
        self._send(i, command, payload)
        return self._receive(i)


@contextlib.contextmanager
def _main_module_importable() -> Any:
    """While starting a process: hide ``__main__.__file__`` if it names no file.

    ``spawn`` runs the parent's main module again in the child, by path. A script read from
    stdin (``python - < script.py``) or typed in a REPL has a ``__file__`` such as
    ``"<stdin>"`` that is not a file, and the child would fail to start. Workers need nothing
    from the main module (families must be importable), so it is skipped there."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or os.path.exists(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class ProcessWorkers(SharedWorkers):
    """``num_workers`` processes, each stepping a contiguous share of the episode slots."""

    def __init__(self, family: TaskFamily, obs_dim: int, act_dim: int, num_workers: int) -> None:
        self._ctx = mp.get_context("spawn")
        self._args = (family, obs_dim, act_dim)
        self.num_workers = num_workers
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        self._shares = []
        try:
            for i in range(num_workers):
                conn, proc = self._spawn(i)
                self._conns.append(conn)
                self._procs.append(proc)
            for i in range(num_workers):
                self._receive(i)  # each worker says "ready" once it has imported everything
        except WorkerError as err:
            self.close()
            raise WorkerError(
                f"{err}. The sampler's workers could not start. Workers are started with "
                f"'spawn', which imports your main module again: in a script, create the "
                f'Sampler under `if __name__ == "__main__":`; a family class must be '
                f"importable (not defined inside a function), or use num_workers=0"
            ) from None
        except BaseException:
            self.close()
            raise

    def _spawn(self, i: int) -> tuple[Connection, mp.process.BaseProcess]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, *self._args),
            name=f"metarl-sampler-{i}",
            daemon=True,  # never outlive the sampler's process
        )
        with _main_module_importable():
            proc.start()
        child.close()
        return parent, proc

    def _restart(self, i: int) -> None:
        proc = self._procs[i]
        if proc.is_alive():
            proc.kill()
        proc.join(_JOIN_SECONDS)
        self._conns[i].close()
        self._conns[i], self._procs[i] = self._spawn(i)
        self._receive(i)  # "ready"

    def _send(self, i: int, command: str, payload: tuple[Any, ...]) -> None:
        try:
            self._conns[i].send((command, payload))
        except (BrokenPipeError, OSError) as err:
            proc = self._procs[i]
            raise WorkerError(
                f"sampler worker {i} (pid {proc.pid}) could not be reached ({err}; exit code "
                f"{proc.exitcode})"
            ) from None

    def _receive(self, i: int) -> Any:
        conn, proc = self._conns[i], self._procs[i]
        while not conn.poll(_POLL_SECONDS):
            if not proc.is_alive():
                raise WorkerError(
                    f"sampler worker {i} (pid {proc.pid}) died with exit code {proc.exitcode}"
                )
        try:
            status, value, trace = conn.recv()
        except (EOFError, OSError):
            proc.join(_JOIN_SECONDS)
            raise WorkerError(
                f"sampler worker {i} (pid {proc.pid}) closed its connection (exit code "
                f"{proc.exitcode})"
            ) from None
        if status == "error":
            value.add_note(f"raised in sampler worker {i}; its traceback:\n{trace}")
            raise value
        return value

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("close", None))
        for proc in self._procs:
            proc.join(_JOIN_SECONDS)
            if proc.is_alive():
                proc.terminate()
                proc.join(_JOIN_SECONDS)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
