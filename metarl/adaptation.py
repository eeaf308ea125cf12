"""The adaptation protocol: what evaluation needs of anything it evaluates, and the one loop
that adapts and samples.

Anything that adapts to a task from a few episodes is an :class:`Adaptable`: it has a family,
a sampler, and makes an :class:`Adaptation` of its starting parameters to a list of tasks
(whose :meth:`~Adaptation.step` takes one adaptation step per task on a batch sampled with the
current parameters). Meta-learners are adaptables (their inner procedure), and so is every
baseline (PPO from scratch, PPO fine-tuning, the oracle, which does not adapt).

:func:`adapt_and_sample` is the loop all of them run: sample episodes of every task, adapt
on them, sample again, and so on. Meta-training, ``learner.adapt`` and held-out evaluation
(:func:`metarl.evaluate`) all run it, so a learner adapts at test time exactly as in
training, and a baseline is measured on episodes drawn exactly as a meta-learner's are: step
``k`` of an evaluation seeded ``s`` samples with :func:`metarl.seeds.evaluation_step`
``(s, k)``, whoever is evaluated.

This module knows neither the learners nor evaluation: both import it.
"""

from __future__ import annotations

import abc
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from metarl import seeds
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy
from metarl.sampling import EpisodeBatch, Sampler
from metarl.task import Task


class Adaptation(abc.ABC):
    """One adaptation to a list of tasks, in progress: :attr:`params` are the current
    parameters of every task, stacked ``[tasks, ...]``; :meth:`sample` samples a batch with
    them and :meth:`step` takes one adaptation step per task on it.

    A learner that adapts by its policy's memory rather than its parameters (RL²) keeps the
    parameters and overrides :meth:`sample` to carry the recurrent state from one batch to
    the next."""

    params: dict[str, torch.Tensor]

    def sample(
        self, sampler: Sampler, tasks: Sequence[Task], episodes: int, seed: int | None
    ) -> EpisodeBatch:
        """``episodes`` episodes of every task with the current parameters (one dict per
        task), from ``seed`` or (None) the sampler's stream."""
        params = GaussianMLPPolicy.unstack_params(self.params)
        return sampler.sample(tasks, params, episodes, seed=seed)

    @abc.abstractmethod
    def step(self, batch: EpisodeBatch) -> None:
        """Update :attr:`params` from ``batch`` (sampled with the current :attr:`params`)."""


class FixedAdaptation(Adaptation):
    """An "adaptation" that keeps its parameters: for what does not adapt (the oracle), so
    that it is measured by the same loop, every step sampling fresh episodes."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        self.params = params

    def step(self, batch: EpisodeBatch) -> None:
        """Nothing: the parameters stay as they are."""


@dataclass(frozen=True)
class Description:
    """How a report names what it measured.

    Attributes:
        name: the report's ``learner`` field (``maml_trpo``, ``ppo-scratch``, ...).
        label: the legend text.
        info: what else the report records of it (iteration, env steps, config, budget).
    """

    name: str
    label: str
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Adaptable(Protocol):
    """What evaluation needs of anything it evaluates (meta-learners and baselines alike)."""

    #: The task family it adapts on.
    family: TaskFamily
    #: Samples episodes with the parameters of an :class:`Adaptation` (its policy's shape).
    sampler: Sampler

    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> Adaptation:
        """A fresh adaptation to ``tasks`` from the starting parameters. ``seed`` seeds any
        randomness of its own (minibatch order, an SB3 model's); None: from its own stream."""
        ...

    def describe(self) -> Description:
        """What a report of it records: name, legend, details."""
        ...


@dataclass(frozen=True)
class AdaptationResult:
    """What :func:`adapt_and_sample` returns.

    Attributes:
        batches: ``batches[k]`` was sampled after ``k`` adaptation steps.
        params: the adapted parameters after the last step, stacked ``[tasks, ...]``.
        adaptation: the finished :class:`Adaptation` (algorithm-specific extras).
        sampling_seconds: wall-clock time spent sampling.
    """

    batches: list[EpisodeBatch]
    params: dict[str, torch.Tensor]
    adaptation: Adaptation
    sampling_seconds: float


def adapt_and_sample(
    adaptable: Adaptable,
    tasks: Sequence[Task],
    episodes: int,
    steps: int,
    seed: int | None = None,
    sample_last: bool = True,
    step_sizes: Sequence[float] | None = None,
) -> AdaptationResult:
    """Sample ``episodes`` of every task with the starting parameters, adapt on them, sample
    again, ... for ``steps`` steps: ``steps + 1`` batches (without the last, after the final
    step, unless ``sample_last``).

    ``seed`` None samples from the sampler's stream (meta-training); an int makes the result
    a function of ``seed`` alone, whatever was sampled before (evaluation). ``step_sizes``
    (for an adaptable whose ``adaptation`` takes them, as MAML-TRPO's): the inner step size
    of each step, the last repeating, instead of the one it trained with.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    tasks = list(tasks)
    if step_sizes is None:
        adaptation = adaptable.adaptation(tasks, seed)
    elif "step_sizes" in inspect.signature(adaptable.adaptation).parameters:
        adaptation = adaptable.adaptation(tasks, seed, step_sizes=step_sizes)  # type: ignore[call-arg]
    else:
        raise ValueError(
            f"{adaptable.describe().name} adapts without a schedulable inner step size; "
            f"step_sizes applies to learners whose inner step is one gradient step (maml_trpo)"
        )
    batches, seconds = [], 0.0
    for k in range(steps + 1 if sample_last else steps):
        start = time.perf_counter()
        step_seed = None if seed is None else seeds.evaluation_step(seed, k)
        batches.append(adaptation.sample(adaptable.sampler, tasks, episodes, step_seed))
        seconds += time.perf_counter() - start
        if k < steps:
            adaptation.step(batches[-1])
    params = {k: v.detach() for k, v in adaptation.params.items()}
    return AdaptationResult(batches, params, adaptation, seconds)
