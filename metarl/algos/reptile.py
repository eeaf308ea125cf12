"""Reptile (Nichol, Achiam and Schulman 2018) for reinforcement learning.

Reptile needs no gradient through the adaptation: it moves the meta-parameters towards the
parameters each task's own training reaches. One meta-iteration:

1. draw ``meta_batch_size`` tasks;
2. **inner loop**, every task at once: from the meta-parameters ``theta``, take
   ``inner_steps`` policy-gradient steps per task, each on ``fast_batch_size`` freshly sampled
   episodes of that task, with a linear feature baseline fitted per task on that batch, GAE and
   advantages normalised per task. A step is PPO-clip (``ppo_epochs`` passes over
   ``ppo_minibatches`` minibatches of episodes; the default) or one vanilla policy-gradient
   update (``inner_algorithm="vpg"``), made by the inner optimiser: Adam with ``beta1 = 0``
   as in the reference implementation (so no momentum carries between minibatches), or SGD.
   The optimiser starts afresh for every adaptation, at meta-training and at test time alike.
   This gives ``phi_i`` per task;
3. **outer update**: ``theta <- theta + eps * mean_i(phi_i - theta)``, with ``eps`` annealed
   linearly from ``meta_step_size`` to ``meta_step_size_final`` over the config's
   ``iterations`` (the reference's 1 -> 0; it stays at the final value after them).
   Alternatively (``outer_optimizer="sgd"`` or ``"adam"``) the pseudo-gradient
   ``theta - mean_i(phi_i)`` is handed to that torch optimiser with learning rate ``eps``.

Test-time adaptation (:meth:`Reptile.adapt`) is the inner loop itself, with the episode budget
the caller gives. The tasks' parameters are stacked ``[tasks, ...]`` and trained together:
each task's loss is a mean over its own steps and the losses are summed, so each slice of the
stacked parameters gets exactly its own task's gradient, and Adam (elementwise) acts on each
slice as a separate optimiser would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from metarl import seeds
from metarl.adaptation import Adaptation, adapt_and_sample
from metarl.algos.base import (
    LearnerConfig,
    MetaLearner,
    inner_return_stats,
    mean_valid_return,
)
from metarl.algos.policy_gradient import (
    TaskData,
    gaussian_log_prob,
    per_step_log_std,
    ppo_clip_loss,
    vpg_loss,
)
from metarl.checkpoint import load_outer_optimizer_state, outer_optimizer_state
from metarl.sampling import EpisodeBatch
from metarl.task import Task

INNER_ALGORITHMS = ("ppo", "vpg")
INNER_OPTIMIZERS = ("adam", "sgd")
OUTER_OPTIMIZERS = (None, "sgd", "adam")


@dataclass(frozen=True)
class ReptileConfig(LearnerConfig):
    """Reptile's settings (beyond :class:`~metarl.algos.base.LearnerConfig`).

    No paper fixes Reptile's settings for RL; the defaults follow the reference (Adam with
    ``beta1 = 0`` inside, the meta step size annealed from 1 to 0) and PPO's usual clip, with the
    task and episode budget of MAML-TRPO's paper config so the two compare on equal sampling.

    Attributes:
        inner_steps: policy-gradient steps per task (each on fresh episodes).
        inner_algorithm: ``"ppo"`` (clipped surrogate) or ``"vpg"`` (vanilla policy gradient).
        inner_optimizer: ``"adam"`` (betas ``(0, 0.999)``) or ``"sgd"``.
        inner_lr: the inner optimiser's learning rate.
        ppo_epochs: passes over each inner batch (PPO only).
        ppo_minibatches: minibatches (of whole episodes) per pass (PPO only).
        ppo_clip: the ratio clip (PPO only).
        meta_step_size: the outer step size ``eps`` at iteration 0.
        meta_step_size_final: ``eps`` at the config's last iteration (linear in between).
        outer_optimizer: None (the interpolation above), ``"sgd"`` or ``"adam"`` (the
            pseudo-gradient given to that optimiser, learning rate ``eps``).
        sample_after: sample ``fast_batch_size`` more episodes per task with the adapted
            parameters to log ``return_after`` (one more sampling per iteration; it does not
            change training). Either way the log has the return of every inner batch:
            ``return_before`` and ``return_after_step_<k>`` for ``k < inner_steps``.
    """

    inner_steps: int = 3
    inner_algorithm: str = "ppo"
    inner_optimizer: str = "adam"
    inner_lr: float = 1e-3
    ppo_epochs: int = 4
    ppo_minibatches: int = 4
    ppo_clip: float = 0.2
    meta_step_size: float = 1.0
    meta_step_size_final: float = 0.0
    outer_optimizer: str | None = None
    sample_after: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("inner_steps", "ppo_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.ppo_minibatches <= self.fast_batch_size:
            raise ValueError(
                f"ppo_minibatches must be between 1 and fast_batch_size "
                f"({self.fast_batch_size}), got {self.ppo_minibatches}"
            )
        for name, choices in (
            ("inner_algorithm", INNER_ALGORITHMS),
            ("inner_optimizer", INNER_OPTIMIZERS),
            ("outer_optimizer", OUTER_OPTIMIZERS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if not self.inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0, got {self.inner_lr}")
        if not 0 < self.ppo_clip < 1:
            raise ValueError(f"ppo_clip must be in (0, 1), got {self.ppo_clip}")
        for name in ("meta_step_size", "meta_step_size_final"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def meta_step_size(config: ReptileConfig, iteration: int) -> float:
    """``eps`` at ``iteration`` (0-based): linear from ``meta_step_size`` to
    ``meta_step_size_final`` over ``config.iterations``, then constant."""
    done = min(iteration / config.iterations, 1.0)
    return (1.0 - done) * config.meta_step_size + done * config.meta_step_size_final


def reptile_update(
    theta: dict[str, torch.Tensor], adapted: dict[str, torch.Tensor], eps: float
) -> dict[str, torch.Tensor]:
    """``theta + eps * mean_i(phi_i - theta)`` for stacked ``adapted`` (``[tasks, ...]``),
    computed as ``lerp(theta, mean_i phi_i, eps)``: exactly ``mean_i phi_i`` when ``eps = 1``."""
    return {k: torch.lerp(v, adapted[k].mean(dim=0), eps) for k, v in theta.items()}


class ReptileAdaptation(Adaptation):
    """Reptile's inner procedure for every task at once: per step, PPO-clip epochs over
    minibatches of the batch's episodes (or one VPG update), by an inner optimiser made
    afresh for this adaptation."""

    def __init__(self, learner: Reptile, n_tasks: int, generator: torch.Generator) -> None:
        cfg = learner.config
        self.learner = learner
        self.params = {
            k: v.requires_grad_(True) for k, v in learner.stacked_params(n_tasks).items()
        }
        leaves = list(self.params.values())
        if cfg.inner_optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                leaves, lr=cfg.inner_lr, betas=(0.0, 0.999)
            )
        else:
            self.optimizer = torch.optim.SGD(leaves, lr=cfg.inner_lr)
        self.generator = generator  # the minibatches' order

    def step(self, batch: EpisodeBatch) -> None:
        cfg = self.learner.config
        data = TaskData.from_batch(batch, cfg.gamma, cfg.gae_lambda)
        if cfg.inner_algorithm == "vpg":
            self.update(data, None, None)
            return
        episodes = batch.episodes_per_task
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(episodes, generator=self.generator)
            for part in torch.tensor_split(order, cfg.ppo_minibatches):
                self.update(data, batch.log_probs, part)

    def update(
        self,
        data: TaskData,
        old_log_prob: torch.Tensor | None,
        episodes: torch.Tensor | None,
    ) -> None:
        """One optimiser step of every task's loss (PPO on ``episodes`` if ``old_log_prob``
        is given, else VPG on all of them)."""
        obs, actions, advantages, mask = (
            data.observations,
            data.actions,
            data.advantages,
            data.mask,
        )
        if episodes is not None:
            obs, actions, advantages, mask = (
                x[:, episodes] for x in (obs, actions, advantages, mask)
            )
        mean, log_std = self.learner.policy.mean_and_log_std_stacked(obs, self.params)
        log_prob = gaussian_log_prob(mean, per_step_log_std(log_std, mean), actions)
        if old_log_prob is None:
            losses = vpg_loss(log_prob, advantages, mask)
        else:
            old = old_log_prob if episodes is None else old_log_prob[:, episodes]
            losses = ppo_clip_loss(log_prob, old, advantages, mask, self.learner.config.ppo_clip)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # each task's slice gets its own loss's gradient
        self.optimizer.step()


class Reptile(MetaLearner):
    """Reptile for RL; see the module doc. ``Reptile(config, run_dir)``."""

    algorithm = "reptile"
    display_name = "Reptile"
    config_class = ReptileConfig
    config: ReptileConfig

    def __init__(self, config: ReptileConfig, run_dir: Any = None) -> None:
        super().__init__(config, run_dir)
        self._outer: torch.optim.Optimizer | None = None
        if config.outer_optimizer == "sgd":
            self._outer = torch.optim.SGD(self.policy.parameters(), lr=config.meta_step_size)
        elif config.outer_optimizer == "adam":
            self._outer = torch.optim.Adam(self.policy.parameters(), lr=config.meta_step_size)

    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> ReptileAdaptation:
        """The inner loop from the meta-parameters. The minibatch order is a function of
        ``seed``, or when None of the config's seed and the iteration (so meta-training and
        :meth:`adapt` at the same iteration shuffle alike, and resume needs no generator
        state)."""
        if seed is None:
            state = seeds.reptile_minibatches(self.config.seed, self.iteration)
        else:
            state = seeds.reptile_minibatches(seed)
        return ReptileAdaptation(self, len(tasks), torch.Generator().manual_seed(state))

    # ------------------------------------------------------------------ meta-iteration
    def meta_step(self) -> dict[str, Any]:
        cfg = self.config
        start = time.perf_counter()
        tasks = self.family.sample_tasks(cfg.meta_batch_size, self.task_rng)
        result = adapt_and_sample(
            self, tasks, cfg.fast_batch_size, cfg.inner_steps, sample_last=cfg.sample_after
        )
        self.env_steps += sum(b.num_env_steps for b in result.batches)
        returns = [mean_valid_return(b) for b in result.batches]
        stats: dict[str, Any] = inner_return_stats(returns[: cfg.inner_steps])
        if cfg.sample_after:
            stats["return_after"] = returns[-1]
        eps = meta_step_size(cfg, self.iteration)
        phi = result.params
        if all(torch.isfinite(v).all() for v in phi.values()):
            self._outer_update(phi, eps)
            stats["update"] = "applied"
        else:  # never fed into the meta-parameters
            stats["update"] = "skipped: non-finite adapted parameters"
        params = torch.nn.utils.parameters_to_vector(self.policy.parameters())
        stats.update(
            meta_step_size=eps,
            param_norm=float(params.detach().norm()),
            sampling_seconds=result.sampling_seconds,
            optimisation_seconds=time.perf_counter() - start - result.sampling_seconds,
        )
        return stats

    def _outer_update(self, phi: dict[str, torch.Tensor], eps: float) -> None:
        named = dict(self.policy.named_parameters())
        if self._outer is None:
            theta = {k: v.detach() for k, v in named.items()}
            with torch.no_grad():
                for k, value in reptile_update(theta, phi, eps).items():
                    named[k].copy_(value)
            return
        for k, p in named.items():
            p.grad = p.detach() - phi[k].mean(dim=0)  # the pseudo-gradient
        for group in self._outer.param_groups:
            group["lr"] = eps
        self._outer.step()
        self._outer.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The outer optimiser's state (Adam's moments and step counts), if there is one."""
        if self._outer is None:
            return {}, {}
        return outer_optimizer_state(self._outer)

    def load_extra_state(self, tensors: Any, state: Any) -> None:
        if self._outer is None:
            super().load_extra_state(tensors, state)
            return
        load_outer_optimizer_state(self._outer, tensors, state)
