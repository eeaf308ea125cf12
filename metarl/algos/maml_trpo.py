"""MAML-TRPO (Finn et al. 2017): a policy initialisation meta-trained with TRPO on the
post-adaptation return, through a vanilla-policy-gradient inner loop.

One meta-iteration:

1. draw ``meta_batch_size`` tasks;
2. for each inner step, sample ``fast_batch_size`` episodes of every task with the current
   (per-task) parameters and take one policy-gradient step per task (first order here: these
   adapted parameters only choose the next episodes);
3. sample ``fast_batch_size`` post-adaptation episodes per task;
4. TRPO on the meta-parameters: the surrogate of the post-adaptation episodes is recomputed
   through the inner steps with their graph kept, so its gradient is **second order**
   (``first_order=True``: FOMAML); the natural-gradient direction comes from conjugate
   gradient on Hessian-vector products of the post-adaptation KL (computed as Fisher-vector
   products, exact at the current parameters; see
   :func:`~metarl.algos.maml.kl_fisher_vector_product`; on a share of the tasks with
   ``fisher_fraction`` < 1, as rllab's ``subsample_factor`` does on samples); a backtracking
   line search
   accepts the first fraction that improves the surrogate within ``max_kl``, else restores the
   parameters exactly.

Each inner batch gets a linear feature baseline fitted on itself (per task), GAE and advantages
normalised per task; so do the post-adaptation episodes.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch.nn.utils import parameters_to_vector

from metarl.adaptation import Adaptation, adapt_and_sample
from metarl.algos.base import (
    LearnerConfig,
    MetaLearner,
    inner_return_stats,
    mean_valid_return,
)
from metarl.algos.maml import (
    adapt,
    adapt_steps,
    kl_fisher_vector_product,
    surrogate_and_kl,
    surrogate_and_kl_of_outputs,
)
from metarl.algos.policy_gradient import TaskData
from metarl.algos.trpo import conjugate_gradient_with_residual, line_search
from metarl.sampling import EpisodeBatch
from metarl.task import Task


@dataclass(frozen=True)
class MAMLTRPOConfig(LearnerConfig):
    """MAML-TRPO's settings; the defaults are the paper's (and its authors' code's).

    The shared fields (:class:`~metarl.algos.base.LearnerConfig`) keep their defaults, the
    paper's for locomotion: 40 tasks per meta-iteration (it uses 20 for 2-D navigation) and 20
    episodes per task for the inner step and for the post-adaptation batch.

    Attributes:
        inner_steps: inner policy-gradient steps (each on fresh episodes); the paper's
            ``num_grad_updates``.
        inner_lr: the inner step size; the paper's ``alpha`` (its code's ``inner_lr``).
        first_order: drop the second-order term of the meta-gradient (FOMAML).
        max_kl: TRPO's trust region, on the mean post-adaptation KL.
        cg_iterations: conjugate-gradient iterations.
        cg_damping: added to the KL Hessian (times identity) for conjugate gradient.
        fisher_fraction: the share of the meta-batch's tasks whose inner and
            post-adaptation data the Fisher-vector products of conjugate gradient use (at
            least one task). Each product runs through the inner step on all of its tasks'
            data, so it costs in proportion; the products are most of a TRPO step's time. The
            gradient, the line search and its KL check always use every task. 1.0 (the paper)
            uses all; rllab and ProMP subsample the same way (``subsample_factor``).
        ls_max_steps: line-search tries.
        ls_backtrack_ratio: the step shrinks by this factor at each try.
    """

    inner_steps: int = 1
    inner_lr: float = 0.1
    first_order: bool = False
    max_kl: float = 0.01
    cg_iterations: int = 10
    cg_damping: float = 1e-5
    fisher_fraction: float = 1.0
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("inner_steps", "cg_iterations", "ls_max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("inner_lr", "max_kl"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.cg_damping >= 0:
            raise ValueError(f"cg_damping must be >= 0, got {self.cg_damping}")
        if not 0 < self.fisher_fraction <= 1:
            raise ValueError(f"fisher_fraction must be in (0, 1], got {self.fisher_fraction}")
        if not 0 < self.ls_backtrack_ratio < 1:
            raise ValueError(f"ls_backtrack_ratio must be in (0, 1), got {self.ls_backtrack_ratio}")


class MAMLAdaptation(Adaptation):
    """MAML's inner procedure: per step, one vanilla policy-gradient step of size ``inner_lr``
    per task (baseline fitted on the batch, advantages normalised per task). Keeps the data
    of each step for the meta-update.

    ``step_sizes`` replaces ``inner_lr`` for evaluation: step k takes ``step_sizes[k]``, the
    last one repeating (the MAML authors evaluated 2D navigation with 0.5, then 0.25)."""

    def __init__(
        self, learner: MAMLTRPO, n_tasks: int, step_sizes: Sequence[float] | None = None
    ) -> None:
        self.learner = learner
        self.params = learner.stacked_params(n_tasks)
        self.step_sizes = check_step_sizes(step_sizes) or (learner.config.inner_lr,)
        #: The inner batches' data, one per step taken.
        self.data: list[TaskData] = []

    def step(self, batch: EpisodeBatch) -> None:
        cfg = self.learner.config
        data = TaskData.from_batch(batch, cfg.gamma, cfg.gae_lambda)
        size = self.step_sizes[min(len(self.data), len(self.step_sizes) - 1)]
        self.data.append(data)
        adapted = adapt(self.learner.policy, self.params, data, size, True, stacked=True)
        self.params = {key: v.detach() for key, v in adapted.items()}


def check_step_sizes(step_sizes: Sequence[float] | None) -> tuple[float, ...] | None:
    """``step_sizes`` as a tuple of floats, each finite and > 0 (None or empty: None)."""
    if step_sizes is None:
        return None
    if isinstance(step_sizes, (str, bytes)) or not isinstance(step_sizes, Sequence):
        raise ValueError(f"step_sizes must be a list of numbers > 0, got {step_sizes!r}")
    sizes = []
    for size in step_sizes:
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < math.inf:
            raise ValueError(f"every step size must be a finite number > 0, got {size!r}")
        sizes.append(float(size))
    return tuple(sizes) or None


class InnerStepLearner(MetaLearner):
    """What MAML-TRPO and ProMP share: MAML's inner procedure (one vanilla policy-gradient
    step per task and inner step, :class:`MAMLAdaptation`), and the meta-iteration around it:
    draw tasks, adapt and sample, then :meth:`meta_update` on the inner batches' data and the
    post-adaptation batch's."""

    def adaptation(
        self,
        tasks: Sequence[Task],
        seed: int | None = None,
        step_sizes: Sequence[float] | None = None,
    ) -> MAMLAdaptation:
        """The inner procedure from the current parameters (deterministic given the batches:
        ``seed`` is unused); ``step_sizes``: see :class:`MAMLAdaptation`."""
        return MAMLAdaptation(self, len(tasks), step_sizes)

    def meta_step(self) -> dict[str, Any]:
        cfg = self.config
        tasks = self.family.sample_tasks(cfg.meta_batch_size, self.task_rng)
        inner_steps = cfg.inner_steps  # type: ignore[attr-defined]
        result = adapt_and_sample(self, tasks, cfg.fast_batch_size, inner_steps)
        self.env_steps += sum(b.num_env_steps for b in result.batches)
        *inner_batches, valid_batch = result.batches

        start = time.perf_counter()
        valid = TaskData.from_batch(valid_batch, cfg.gamma, cfg.gae_lambda)
        stats = self.meta_update(cast(MAMLAdaptation, result.adaptation), valid)
        stats.update(
            **inner_return_stats([mean_valid_return(b) for b in inner_batches]),
            return_after=mean_valid_return(valid_batch),
            sampling_seconds=result.sampling_seconds,
            optimisation_seconds=time.perf_counter() - start,
        )
        return stats

    @abc.abstractmethod
    def meta_update(self, adaptation: MAMLAdaptation, valid: TaskData) -> dict[str, Any]:
        """Update the meta-parameters from a finished adaptation (its inner batches' data in
        ``adaptation.data``) and the post-adaptation batch's data; the update's statistics."""


class MAMLTRPO(InnerStepLearner):
    """MAML with a TRPO meta-update; see the module doc. ``MAMLTRPO(config, run_dir)``."""

    algorithm = "maml_trpo"
    display_name = "MAML-TRPO"
    config_class = MAMLTRPOConfig
    config: MAMLTRPOConfig

    def meta_update(self, adaptation: MAMLAdaptation, valid: TaskData) -> dict[str, Any]:
        """The TRPO step through the inner step(s)."""
        return self._trpo_step(adaptation.data, valid)

    def _trpo_step(self, inner: list[TaskData], valid: TaskData) -> dict[str, Any]:
        cfg, policy = self.config, self.policy
        params = list(policy.parameters())

        adapted = adapt_steps(policy, policy.params(), inner, cfg.inner_lr, cfg.first_order)
        mean, log_std = policy.mean_and_log_std_stacked(valid.observations, adapted)
        old_mean, old_log_std = mean.detach(), log_std.detach()  # the policy that sampled
        loss, _ = surrogate_and_kl_of_outputs(mean, log_std, valid, old_mean, old_log_std)
        grads = torch.autograd.grad(loss, params)
        gradient = torch.cat([g.reshape(-1) for g in grads])
        old_loss = float(loss.detach())
        if not (torch.isfinite(gradient).all() and torch.isfinite(loss)):
            return {"loss_before": old_loss, "update": "skipped: non-finite gradient"}
        n = max(1, round(cfg.fisher_fraction * valid.mask.shape[0]))
        hvp = kl_fisher_vector_product(
            policy,
            policy.params(),
            [data.first_tasks(n) for data in inner],
            valid.first_tasks(n),
            cfg.inner_lr,
            cfg.first_order,
            cfg.cg_damping,
        )
        direction, residual = conjugate_gradient_with_residual(hvp, gradient, cfg.cg_iterations)
        curvature = direction @ (gradient - residual)  # = direction^T H direction
        if not (torch.isfinite(curvature) and curvature > 0):
            return {"loss_before": old_loss, "update": "skipped: non-positive curvature"}
        step = -direction * torch.sqrt(2 * cfg.max_kl / curvature)

        @torch.no_grad()
        def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
            candidate = adapt_steps(policy, policy.params(), inner, cfg.inner_lr, True)
            return surrogate_and_kl(policy, candidate, valid, old_mean, old_log_std)

        result = line_search(
            params,
            step,
            evaluate,
            old_loss,
            cfg.max_kl,
            cfg.ls_backtrack_ratio,
            cfg.ls_max_steps,
        )
        return {
            "loss_before": old_loss,
            "loss_after": result.loss,
            "kl": result.kl,
            "step_fraction": result.step_fraction,
            "line_search_tries": result.tries,
            "update": "accepted" if result.accepted else "rejected: parameters restored",
            "param_norm": float(parameters_to_vector(params).detach().norm()),
        }
