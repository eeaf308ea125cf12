"""Where a sampler's envs run: its backends, by name.

A backend turns a :class:`WorkerSpec` (the family, the sizes, how many workers) into the
:class:`Workers` the sampler steps in lock-step: ``reset`` every episode slot, ``step`` them
all with one array of actions, ``close``. The sampler, the ``backend`` key of a config and
``metarl train --backend`` look them up here by name:

- ``"local"``: this machine's cores. Vectorized families (every bundled one) step in the
  sampler's process, MuJoCo's physics on threads (a pure-NumPy family in one NumPy call);
  other envs in worker processes (or on the calling thread with ``num_workers=0``).
  :mod:`metarl.sampling.workers`.
- ``"ray"``: Ray actors on a Ray cluster (``pip install "metarl[ray]"``).
  :mod:`metarl.sampling.ray_workers`.

Every backend gives the same batch for the same seed: seeds are drawn per episode slot, never
per worker. Another backend (a job scheduler, say) is one :func:`register_backend` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from metarl.family import TaskFamily
from metarl.task import Task


class Workers(Protocol):
    """What a backend gives the sampler: envs for episode slots, stepped all at once."""

    #: workers in use (physics threads, processes or actors; 0: the calling thread).
    num_workers: int

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        """Reset slot i to ``tasks[i]`` with ``seeds[i]``; the first observations, stacked."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step every slot; ``(obs, rewards, terminated, truncated, sim_unstable)``."""

    def close(self) -> None:
        """Stop the workers and close the envs."""


@runtime_checkable
class Lanes(Protocol):
    """Workers whose envs can also be stepped as independent groups of tasks (lanes), each
    on a thread of its own, so that one lane's policy forward and bookkeeping (which hold
    the GIL) run while another lane's physics runs (which does not). The batch is the same
    to the bit with or without lanes (:class:`metarl.sampling.sampler.Sampler`)."""

    def lanes(self, groups: Sequence[slice]) -> list[Workers] | None:
        """Workers for the episode slots of each group of tasks (contiguous ranges covering
        the batch's tasks in order), to step them concurrently; None to step every task in
        one lane (with :meth:`Workers.reset` and :meth:`Workers.step`)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a backend needs to start its workers."""

    family: TaskFamily
    obs_dim: int
    act_dim: int
    #: as given to the sampler: None means the backend's own default.
    num_workers: int | None
    #: step the envs through their vector step (:mod:`metarl.array_step`), in-process.
    vectorized: bool
    #: the cluster to join, for backends that have one (None: the backend's default).
    address: str | None = None


@dataclass(frozen=True)
class Backend:
    """A named way to run a sampler's envs."""

    name: str
    #: start the workers (called when the sampler first samples, not when it is built).
    start: Callable[[WorkerSpec], Workers]
    #: the smallest ``num_workers`` it accepts.
    min_workers: int = 0
    #: ``num_workers`` when the sampler is given None (None: decided by ``start``).
    default_workers: Callable[[], int | None] = lambda: None
    #: raise a clear error early (a missing optional dependency) rather than at first sample.
    check: Callable[[], None] = lambda: None


def _start_local(spec: WorkerSpec) -> Workers:
    from metarl.sampling.workers import InProcessWorkers, ProcessWorkers

    workers = spec.num_workers or 0
    if workers == 0 or spec.vectorized:
        return InProcessWorkers(
            spec.family, spec.obs_dim, spec.act_dim, spec.vectorized, num_threads=workers
        )
    return ProcessWorkers(spec.family, spec.obs_dim, spec.act_dim, workers)


def _start_ray(spec: WorkerSpec) -> Workers:
    from metarl.sampling.ray_workers import RayWorkers

    return RayWorkers(
        spec.family,
        spec.obs_dim,
        spec.act_dim,
        spec.num_workers,
        spec.vectorized,
        address=spec.address,
    )


def _check_ray() -> None:
    from metarl.sampling.ray_workers import import_ray

    import_ray()


def default_num_workers() -> int:
    """The number of cores this process may use."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Make ``backend`` available by its name (to ``Sampler(backend=...)``, configs, the CLI)."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register a metarl.sampling.Backend, got {type(backend).__name__}")
    if backend.name in _BACKENDS:
        raise ValueError(f"a sampler backend named {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend


def backend_names() -> list[str]:
    """The registered backends' names."""
    return list(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called ``name``, or a ValueError that lists those there are."""
    try:
        return _BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown sampler backend {name!r}; available: {backend_names()}"
        ) from None


register_backend(Backend("local", _start_local, default_workers=default_num_workers))
register_backend(Backend("ray", _start_ray, min_workers=1, check=_check_ray))
