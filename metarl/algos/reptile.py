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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from metarl.algos.base import LearnerConfig, MetaLearner, inner_return_stats, mean_valid_return
from metarl.algos.policy_gradient import (
    TaskData,
    gaussian_log_prob,
    per_step_log_std,
    ppo_clip_loss,
    vpg_loss,
)
from metarl.policies import GaussianMLPPolicy
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
        meta_batch_size: tasks per meta-iteration.
        fast_batch_size: episodes per task for each inner step.
        inner_steps: policy-gradient steps per task (each on fresh episodes).
        inner_algorithm: ``"ppo"`` (clipped surrogate) or ``"vpg"`` (vanilla policy gradient).
        inner_optimizer: ``"adam"`` (betas ``(0, 0.999)``) or ``"sgd"``.
        inner_lr: the inner optimiser's learning rate.
        ppo_epochs: passes over each inner batch (PPO only).
        ppo_minibatches: minibatches (of whole episodes) per pass (PPO only).
        ppo_clip: the ratio clip (PPO only).
        gamma: discount.
        gae_lambda: GAE's lambda (1: Monte-Carlo returns minus the baseline, as MAML-TRPO).
        meta_step_size: the outer step size ``eps`` at iteration 0.
        meta_step_size_final: ``eps`` at the config's last iteration (linear in between).
        outer_optimizer: None (the interpolation above), ``"sgd"`` or ``"adam"`` (the
            pseudo-gradient given to that optimiser, learning rate ``eps``).
        sample_after: sample ``fast_batch_size`` more episodes per task with the adapted
            parameters to log ``return_after`` (one more sampling per iteration; it does not
            change training). Either way the log has the return of every inner batch:
            ``return_before`` and ``return_after_step_<k>`` for ``k < inner_steps``.
    """

    meta_batch_size: int = 40
    fast_batch_size: int = 20
    inner_steps: int = 3
    inner_algorithm: str = "ppo"
    inner_optimizer: str = "adam"
    inner_lr: float = 1e-3
    ppo_epochs: int = 4
    ppo_minibatches: int = 4
    ppo_clip: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 1.0
    meta_step_size: float = 1.0
    meta_step_size_final: float = 0.0
    outer_optimizer: str | None = None
    sample_after: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("meta_batch_size", "fast_batch_size", "inner_steps", "ppo_epochs"):
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
        if not (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("gamma and gae_lambda must be in [0, 1]")


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


class Reptile(MetaLearner):
    """Reptile for RL; see the module doc. ``Reptile(config, run_dir)``."""

    algorithm = "reptile"
    config_class = ReptileConfig
    config: ReptileConfig

    def __init__(self, config: ReptileConfig, run_dir: Any = None) -> None:
        super().__init__(config, run_dir)
        self._sampling_seconds = 0.0
        self._outer: torch.optim.Optimizer | None = None
        if config.outer_optimizer == "sgd":
            self._outer = torch.optim.SGD(self.policy.parameters(), lr=config.meta_step_size)
        elif config.outer_optimizer == "adam":
            self._outer = torch.optim.Adam(self.policy.parameters(), lr=config.meta_step_size)

    # ------------------------------------------------------------------ inner loop
    def _shuffle_generator(self) -> torch.Generator:
        """The minibatch order's randomness: a function of the seed and the iteration only,
        so meta-training and :meth:`adapt` at the same iteration shuffle alike, and resume
        needs no generator state."""
        seed = np.random.SeedSequence(self.config.seed, spawn_key=(2, self.iteration))
        return torch.Generator().manual_seed(int(seed.generate_state(1, np.uint64)[0] >> 1))

    def _inner_loop(
        self, tasks: list[Task], steps: int, episodes: int
    ) -> tuple[dict[str, torch.Tensor], list[float]]:
        """Adapt to every task at once; ``(phi [tasks, ...], mean return of each inner batch)``."""
        cfg = self.config
        n = len(tasks)
        phi = {
            k: v.detach().unsqueeze(0).repeat(n, *[1] * v.ndim).requires_grad_(True)
            for k, v in self.policy.params().items()
        }
        leaves = list(phi.values())
        if cfg.inner_optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(
                leaves, lr=cfg.inner_lr, betas=(0.0, 0.999)
            )
        else:
            optimizer = torch.optim.SGD(leaves, lr=cfg.inner_lr)
        generator = self._shuffle_generator()
        returns = []
        for _ in range(steps):
            batch = self._sample(tasks, phi, episodes)
            returns.append(mean_valid_return(batch))
            data = TaskData.from_batch(batch, cfg.gamma, cfg.gae_lambda)
            if cfg.inner_algorithm == "vpg":
                self._inner_update(phi, optimizer, data, None, None)
                continue
            old_log_prob = batch.log_probs
            for _ in range(cfg.ppo_epochs):
                order = torch.randperm(episodes, generator=generator)
                for part in torch.tensor_split(order, cfg.ppo_minibatches):
                    self._inner_update(phi, optimizer, data, old_log_prob, part)
        return {k: v.detach() for k, v in phi.items()}, returns

    def _sample(self, tasks: list[Task], phi: dict[str, torch.Tensor], episodes: int) -> Any:
        """Sample with stacked parameters, counting env steps and sampling seconds."""
        start = time.perf_counter()
        batch = self.sampler.sample(tasks, GaussianMLPPolicy.unstack_params(phi), episodes)
        self.env_steps += batch.num_env_steps
        self._sampling_seconds += time.perf_counter() - start
        return batch

    def _inner_update(
        self,
        phi: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
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
        mean, log_std = self.policy.mean_and_log_std_stacked(obs, phi)
        log_prob = gaussian_log_prob(mean, per_step_log_std(log_std, mean), actions)
        if old_log_prob is None:
            losses = vpg_loss(log_prob, advantages, mask)
        else:
            old = old_log_prob if episodes is None else old_log_prob[:, episodes]
            losses = ppo_clip_loss(log_prob, old, advantages, mask, self.config.ppo_clip)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # each task's slice gets its own loss's gradient
        optimizer.step()

    # ------------------------------------------------------------------ meta-iteration
    def meta_step(self) -> dict[str, Any]:
        cfg = self.config
        start = time.perf_counter()
        self._sampling_seconds = 0.0
        tasks = self.family.sample_tasks(cfg.meta_batch_size, self.task_rng)
        phi, returns = self._inner_loop(tasks, cfg.inner_steps, cfg.fast_batch_size)
        stats: dict[str, Any] = inner_return_stats(returns)
        if cfg.sample_after:
            stats["return_after"] = mean_valid_return(self._sample(tasks, phi, cfg.fast_batch_size))
        eps = meta_step_size(cfg, self.iteration)
        if all(torch.isfinite(v).all() for v in phi.values()):
            self._outer_update(phi, eps)
            stats["update"] = "applied"
        else:  # never fed into the meta-parameters
            stats["update"] = "skipped: non-finite adapted parameters"
        params = torch.nn.utils.parameters_to_vector(self.policy.parameters())
        stats.update(
            meta_step_size=eps,
            param_norm=float(params.detach().norm()),
            sampling_seconds=self._sampling_seconds,
            optimisation_seconds=time.perf_counter() - start - self._sampling_seconds,
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

    def adapt(self, task: Task, episodes: int, steps: int = 1) -> dict[str, torch.Tensor]:
        if steps == 0:
            return {k: v.detach() for k, v in self.policy.params().items()}
        phi, _ = self._inner_loop([task], steps, episodes)
        return GaussianMLPPolicy.unstack_params(phi)[0]

    # ------------------------------------------------------------------ state
    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The outer optimiser's state (Adam's moments and step counts), if there is one."""
        if self._outer is None:
            return {}, {}
        state = self._outer.state_dict()
        tensors, values = {}, {}
        for index, slots in state["state"].items():
            for key, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"outer/{index}/{key}"] = value
                else:
                    values[f"{index}/{key}"] = value
        return tensors, {"outer_values": values, "outer_groups": state["param_groups"]}

    def load_extra_state(self, tensors: Any, state: Any) -> None:
        if self._outer is None:
            super().load_extra_state(tensors, state)
            return
        slots: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            _, index, key = name.split("/", 2)
            slots.setdefault(int(index), {})[key] = value
        for name, value in state.get("outer_values", {}).items():
            index, key = name.split("/", 1)
            slots.setdefault(int(index), {})[key] = value
        self._outer.load_state_dict({"state": slots, "param_groups": state["outer_groups"]})
