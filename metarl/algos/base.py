"""What every meta-learner shares: the policy, the sampler, seeding, the training loop (with
its callbacks, log and periodic checkpoints), the progress bar, and the adaptation loop. An
algorithm is its config dataclass plus :meth:`MetaLearner.meta_step` (one meta-iteration) and
:meth:`MetaLearner.adaptation` (its inner procedure, one step at a time), and, when it has
state beyond the policy, :meth:`MetaLearner.extra_state` / :meth:`MetaLearner.load_extra_state`.

The learner trains; the run is :mod:`metarl.runs`'s: the run directory's layout and log, the
checkpoint's names and contents, loading and resuming. :mod:`metarl.runs` imports this module
(it builds learners), so this module imports it only inside the methods that write to a run
(opening the run directory, :meth:`MetaLearner.save`, the checkpoints of :meth:`train`), never
when it is imported: the import graph has no cycle.

A learner is an :class:`~metarl.adaptation.Adaptable`: adaptation is always the loop of
:func:`metarl.adaptation.adapt_and_sample` (sample episodes of every task with the current
parameters, take one adaptation step per task on them, sample again, ...). Meta-training,
:meth:`MetaLearner.adapt` and held-out evaluation (:func:`metarl.evaluate`) all run it, so a
learner adapts at test time exactly as it did in training.
"""

from __future__ import annotations

import abc
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from metarl import seeds
from metarl.adaptation import Adaptation, Description, adapt_and_sample
from metarl.algos.callbacks import Callback, as_callback
from metarl.algos.config import config_to_dict
from metarl.checkpoint import load_checkpoint, section
from metarl.family import TaskFamily
from metarl.memory import keep_freed_memory
from metarl.policies import GaussianMLPPolicy, ParameterDictPolicy
from metarl.registry import make_family
from metarl.sampling import EpisodeBatch, Sampler
from metarl.sampling.backends import get_backend
from metarl.task import Task

if TYPE_CHECKING:
    from metarl.runs import RunLog


@dataclass(frozen=True)
class LearnerConfig:
    """Settings every meta-learner has.

    Attributes:
        family: the registered id of the task family to meta-train on.
        seed: the root of every random draw (policy init, tasks, episodes).
        iterations: meta-iterations ``metarl train`` runs by default.
        num_workers: sampler workers (None: every core, or with Ray one actor per CPU of the
            cluster); see :class:`~metarl.Sampler`.
        backend: where the sampler runs the envs: ``"local"`` (this machine) or ``"ray"`` (a
            Ray cluster), or any name registered in :mod:`metarl.sampling.backends`. The
            batches, and so the run, are the same whichever backend.
        address: the cluster the backend joins (Ray: ``"auto"``, ``"ray://head:10001"``;
            None: ``RAY_ADDRESS`` or a local instance).
        hidden_sizes: the policy's hidden layers.
        activation: the policy's nonlinearity.
        init_std: the policy's initial action standard deviation.
        checkpoint_every: write a checkpoint every this many iterations (and at the end).
        init_policy: a checkpoint whose policy meta-training starts from instead of a fresh
            one (a warm start): a policy ``metarl baseline pretrained`` saved, or any
            learner's checkpoint, of the same family and architecture. Its env steps count
            toward the run's, so a baseline given the run's budget (``--like``) gets them too.
        meta_batch_size: tasks per meta-iteration.
        fast_batch_size: episodes per task for each inner step (and for any batch sampled
            after adaptation).
        gamma: discount.
        gae_lambda: GAE's lambda (1.0: Monte-Carlo returns minus the baseline).

    A learner's own config adds its fields; the inner procedure's, where it has one, are
    ``inner_steps`` and ``inner_lr`` in every algorithm.
    """

    family: str = "Navigation2D-v0"
    seed: int = 0
    iterations: int = 500
    num_workers: int | None = None
    backend: str = "local"
    address: str | None = None
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_std: float = 1.0
    checkpoint_every: int = 10
    init_policy: str | None = None
    meta_batch_size: int = 40
    fast_batch_size: int = 20
    gamma: float = 0.99
    gae_lambda: float = 1.0

    def __post_init__(self) -> None:
        for name in ("iterations", "checkpoint_every", "meta_batch_size", "fast_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("gamma and gae_lambda must be in [0, 1]")
        if not (self.init_std > 0 and math.isfinite(self.init_std)):
            raise ValueError(f"init_std must be a finite number > 0, got {self.init_std}")
        get_backend(self.backend)  # a ValueError naming the backends there are


def mean_valid_return(batch: EpisodeBatch) -> float:
    """Mean undiscounted return over the episodes whose physics stayed stable."""
    valid = ~batch.sim_unstable
    returns = batch.returns()[valid]
    return float(returns.mean()) if returns.numel() else float("nan")


def inner_return_stats(returns: list[float]) -> dict[str, float]:
    """Log entries for the mean returns of a meta-iteration's inner batches, in order:
    ``return_before`` (sampled with the meta-parameters), then ``return_after_step_<k>``
    (sampled after ``k`` adaptation steps)."""
    stats = {"return_before": returns[0]}
    stats.update({f"return_after_step_{k}": r for k, r in enumerate(returns[1:], start=1)})
    return stats


#: Iterations in a row whose update was rejected or skipped before training warns.
STALLED_WARNING = 5


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C, after finishing and checkpointing an iteration."""

    def __init__(self, iteration: int, checkpoint: Path | None) -> None:
        where = f"; its checkpoint: {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"training interrupted after iteration {iteration}{where}")
        self.iteration = iteration
        self.checkpoint = checkpoint


class _DeferredInterrupt:
    """While training: the first Ctrl-C asks to stop once the iteration under way is done
    (so the checkpoint is a consistent one), a second one stops at once. Only in the main
    thread (signal handlers can be set nowhere else); elsewhere Ctrl-C acts as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nCtrl-C: finishing this iteration, then saving a checkpoint (Ctrl-C again to "
            "stop now, the latest checkpoint standing)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _progress_line(learner: MetaLearner, stats: dict[str, Any], done: int, total: int) -> str:
    """One iteration's progress, for a log file: iteration, returns, env steps, time."""
    before = stats.get("return_before", float("nan"))
    after = stats.get("return_after", float("nan"))
    return (
        f"iteration {learner.iteration} ({done}/{total}): return before {before:.2f}, after "
        f"{after:.2f}, update {stats.get('update', '-')}, env steps {learner.env_steps:,}, "
        f"{stats['seconds']:.1f} s"
    )


def _warn_if_stalled(learner: MetaLearner, stats: dict[str, Any], stalled: int) -> int:
    """Count iterations in a row whose update was rejected or skipped; warn at
    ``STALLED_WARNING`` of them (and every ``STALLED_WARNING`` more)."""
    update = str(stats.get("update", ""))
    stalled = stalled + 1 if update.startswith(("rejected", "skipped")) else 0
    if stalled and stalled % STALLED_WARNING == 0:
        warnings.warn(
            f"{learner.algorithm}: the last {stalled} iterations (to {learner.iteration}) made "
            f"no update ({update}): training is not learning; check the step sizes "
            f"(inner_lr, max_kl, meta_step_size) and the returns in progress.csv",
            RuntimeWarning,
            stacklevel=3,
        )
    return stalled


class MetaLearner(abc.ABC):
    """A meta-learner: ``learner.train(iterations)``, ``learner.adapt(task, ...)``,
    ``learner.save(path)``; ``metarl.load(path)`` brings one back.

    Args:
        config: the algorithm's config.
        run_dir: the run directory, where the config, logs and checkpoints go (its layout:
            :mod:`metarl.runs`); None: nowhere, nothing is written.
    """

    #: The name config files and checkpoints use (``algorithm: ...``), and its registry key.
    algorithm: ClassVar[str]
    #: The name legends and tables use (``"MAML-TRPO"``); by default, :attr:`algorithm`.
    display_name: ClassVar[str]
    #: The config dataclass: the fields a config file of this algorithm takes.
    config_class: ClassVar[type[LearnerConfig]]
    #: Whether adapting changes the policy's parameters (every gradient-based learner), so
    #: that :meth:`adapt` returns them and they can be exported or filmed; RL², which adapts
    #: in its policy's hidden state, says False.
    adapts_parameters: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that renames the algorithm does not inherit its parent's display name.
        if "algorithm" in cls.__dict__ and "display_name" not in cls.__dict__:
            cls.display_name = cls.algorithm

    def __init__(self, config: LearnerConfig, run_dir: str | Path | None = None) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        keep_freed_memory()  # the meta-step's large tensors: 2.2x faster (see metarl.memory)
        self.family: TaskFamily = make_family(config.family)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds.policy_init(config.seed))
            self.policy = self.make_policy(self.family, config)
        self.sampler = Sampler(
            self.family,
            config.backend,
            num_workers=config.num_workers,
            seed=config.seed,
            policy=self.policy,
            address=config.address,
        )
        self.task_rng = np.random.default_rng(seeds.learner_tasks(config.seed))
        self.iteration = 0
        self.env_steps = 0
        if config.init_policy is not None:
            self.env_steps = self._warm_start(config.init_policy)
        #: The statistics of the last meta-iteration (empty before the first).
        self.last_stats: dict[str, Any] = {}
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._log: RunLog | None = None
        if self.run_dir is not None:
            from metarl import runs  # at call time: metarl.runs imports the learners

            self._log = runs.open_run(self.run_dir, self.algorithm, config)

    @classmethod
    def make_policy(cls, family: TaskFamily, config: LearnerConfig) -> ParameterDictPolicy:
        """The policy this learner meta-trains, for ``family`` (initialised from torch's
        global generator): by default a :class:`~metarl.policies.GaussianMLPPolicy` of the
        config's ``hidden_sizes``, ``activation`` and ``init_std``."""
        return GaussianMLPPolicy.for_family(
            family, config.hidden_sizes, config.activation, config.init_std
        )

    @classmethod
    def policy_shape_error(
        cls, policy: Mapping[str, torch.Tensor], config: LearnerConfig
    ) -> str | None:
        """What is wrong, if anything, with a checkpoint's policy tensors for ``config``,
        checked before the learner is built from it (a config edited to huge layers must not
        allocate them): by default, the MLP's hidden layers against ``hidden_sizes``."""
        weights = sorted(
            (int(name.split(".")[1]), value)
            for name, value in policy.items()
            if name.startswith("mean_net.") and name.endswith(".weight")
        )
        found = [int(value.shape[0]) for _, value in weights[:-1]]
        if found != list(config.hidden_sizes):
            return (
                f"its config says hidden_sizes {list(config.hidden_sizes)}, but its policy's "
                f"hidden layers are {found}"
            )
        return None

    def _warm_start(self, path: str) -> int:
        """Load the policy of the checkpoint ``path`` into :attr:`policy`; its env steps."""
        try:
            tensors, meta = load_checkpoint(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"init_policy {path!r} does not exist; give a checkpoint (.safetensors) to "
                f"start from, e.g. one 'metarl baseline pretrained' saved"
            ) from None
        family = meta.get("config", {}).get("family")
        if family != self.family.id:
            raise ValueError(
                f"init_policy {path} holds a policy of {family}, not of {self.family.id}; give "
                f"a checkpoint of the family meta-trained"
            )
        policy = section(tensors, "policy")
        if not all(torch.isfinite(v).all() for v in policy.values()):
            raise ValueError(f"init_policy {path} holds non-finite parameters")
        try:
            self.policy.load_state_dict(policy)
        except RuntimeError as err:
            raise ValueError(
                f"init_policy {path} holds a policy of other shapes than this config's: {err}; "
                f"give a policy of the same hidden_sizes (an oracle's observes the task and "
                f"does not fit)"
            ) from None
        return int(meta.get("env_steps", 0))

    # ------------------------------------------------------------------ the algorithm
    @abc.abstractmethod
    def meta_step(self) -> dict[str, Any]:
        """One meta-iteration; returns its statistics for the log."""

    @abc.abstractmethod
    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> Adaptation:
        """A fresh adaptation of the meta-parameters to ``tasks`` (the algorithm's inner
        procedure). ``seed`` seeds any randomness of its own (minibatch order); None takes it
        from the training stream, as meta-training does."""

    def describe(self) -> Description:
        """How a report names this learner: its algorithm, its display name and iteration,
        its env steps and config."""
        label = type(self).display_name
        if self.iteration:
            label += f" (iteration {self.iteration})"
        info = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "config": config_to_dict(self.config),
        }
        if not self.adapts_parameters:  # adapts by memory: step k is a trial's k-th episode
            info["episodes_per_step"] = 1
        return Description(self.algorithm, label, info)

    def adapt(self, task: Task, episodes: int, steps: int = 1) -> dict[str, torch.Tensor]:
        """The policy parameters adapted to ``task`` from the meta-parameters, with ``steps``
        updates of ``episodes`` fresh episodes each (from the sampler's stream)."""
        result = adapt_and_sample(self, [task], episodes, steps, sample_last=False)
        return GaussianMLPPolicy.unstack_params(result.params)[0]

    def stacked_params(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` detached copies of the meta-parameters, stacked ``[n, ...]``: where every
        adaptation starts."""
        return {
            k: v.detach().unsqueeze(0).repeat(n, *[1] * v.ndim)
            for k, v in self.policy.params().items()
        }

    # ------------------------------------------------------------------ training
    def train(
        self, iterations: int, callback: Callback | Sequence[Callback] | None = None
    ) -> MetaLearner:
        """Run ``iterations`` more meta-iterations (logging each, checkpointing every
        ``checkpoint_every`` and at the end when there is a run directory); returns self.

        Progress shows as a bar on a terminal, and as one line per iteration otherwise
        (nohup, CI, a log file). Ctrl-C finishes the iteration under way, checkpoints it and
        raises :class:`TrainingInterrupted` (a second Ctrl-C stops at once, the latest
        checkpoint standing). Updates rejected or skipped ``STALLED_WARNING`` iterations in a
        row raise a warning (training goes on: a run may recover).

        ``callback`` (a :class:`~metarl.algos.callbacks.Callback` or a list of them) is called
        after each iteration, before it is logged; it may add statistics to the log (held-out
        evaluation) or stop training early by returning False.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be an int >= 0, got {iterations!r}")
        hooks = as_callback(callback)
        hooks.on_training_start(self)
        bar = tqdm(range(iterations), desc=f"{self.algorithm} {self.config.family}", disable=None)
        ran, stalled = 0, 0
        with _DeferredInterrupt() as interrupt:
            for _ in bar:
                start = time.perf_counter()
                stats = self.meta_step()
                self.iteration += 1
                ran += 1
                stats["seconds"] = time.perf_counter() - start
                stats["env_steps"] = self.env_steps
                keep_going = hooks.on_iteration_end(self, stats)
                self.last_stats = stats
                if self._log is not None:
                    self._log.write(self.iteration, stats)
                stalled = _warn_if_stalled(self, stats, stalled)
                if bar.disable:  # not a terminal (nohup, CI, a log file): a line per iteration
                    print(_progress_line(self, stats, ran, iterations), flush=True)
                else:
                    bar.set_postfix(
                        before=f"{stats.get('return_before', float('nan')):.1f}",
                        after=f"{stats.get('return_after', float('nan')):.1f}",
                    )
                if self.run_dir is not None and self.iteration % self.config.checkpoint_every == 0:
                    self._checkpoint()
                if keep_going is False or interrupt.requested:
                    break
        bar.close()
        saved = None
        if self.run_dir is not None and ran and self.iteration % self.config.checkpoint_every:
            saved = self._checkpoint()
        hooks.on_training_end(self)
        if interrupt.requested:
            raise TrainingInterrupted(self.iteration, saved or self._latest_checkpoint())
        return self

    def _latest_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        from metarl import runs

        return runs.latest_checkpoint(self.run_dir)

    def _checkpoint(self) -> Path:
        """Write this iteration's checkpoint into the run directory."""
        from metarl import runs  # at call time: metarl.runs imports the learners

        return runs.write_checkpoint(self)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Algorithm state beyond the shared one: ``(tensors, json)``, kept in its checkpoints
        (:func:`metarl.runs.write_checkpoint`); none by default."""
        return {}, {}

    def load_extra_state(self, tensors: Mapping[str, torch.Tensor], state: Mapping) -> None:
        """Restore what :meth:`extra_state` returned (the base class has none)."""
        if tensors or state:
            raise ValueError(f"unexpected algorithm state in the checkpoint: {sorted(state)}")

    def save(self, path: str | Path, baseline: Mapping[str, Any] | None = None) -> Path:
        """Write a checkpoint to ``path`` holding everything needed to continue bit-exactly
        (:func:`metarl.runs.write_checkpoint`, which says what it holds; ``baseline`` is
        recorded there too); ``metarl.load(path)`` brings the learner back."""
        from metarl import runs  # at call time: metarl.runs imports the learners

        return runs.write_checkpoint(self, path, baseline)

    def close(self) -> None:
        """Stop the sampler's workers and close the logs."""
        self.sampler.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> MetaLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
