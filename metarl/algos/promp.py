"""ProMP (Rothfuss, Lee, Clavera, Asfour and Abbeel 2019, "ProMP: Proximal Meta-Policy
Search"): MAML's adaptation, meta-trained with a PPO-style outer objective and a
low-variance estimate of the curvature the meta-gradient needs.

One meta-iteration, as in the authors' ``meta_policy_search`` (``meta_algos/pro_mp.py``):

1. draw ``meta_batch_size`` tasks;
2. for each inner step, sample ``fast_batch_size`` episodes of every task with the current
   (per-task) parameters and take one policy-gradient step of size ``inner_lr`` per task;
   then sample the post-adaptation episodes. This is MAML-TRPO's inner procedure exactly: at
   the parameters that sampled a batch, the gradient of ProMP's inner surrogate is the
   vanilla policy gradient (so :meth:`ProMP.adapt` and evaluation adapt as MAML-TRPO does);
3. ``ppo_epochs`` Adam steps (learning rate ``learning_rate``) on the meta-parameters, each
   on the whole meta-batch (``num_minibatches = 1``, the authors' setting), of

   ``mean_i [ -mean_t min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A) ]
   + mean_k inner_kl_coeff_k * KL_k``

   where the post-adaptation policy is recomputed through the inner step(s) with the
   **low-variance-curvature (LVC) surrogate** ``-mean(pi_theta / pi_old * A)`` of each
   inner batch (``pi_old``: the policy that sampled it, a constant), so the meta-gradient
   is second order with the LVC estimator's curvature; ``r`` is the ratio of that policy to
   the one that sampled the post-adaptation episodes; ``KL_k`` is the mean KL, on inner
   batch ``k``, from the policy that sampled it to the current pre-step policy (zero at the
   first epoch: it keeps the pre-update policy near the one that drew the inner data);
4. with ``adaptive_inner_kl_penalty``, each ``inner_kl_coeff_k`` is halved when ``KL_k``
   fell below ``target_inner_kl / 1.5`` and doubled above ``1.5 target_inner_kl``.

The defaults are the authors' MuJoCo run script's (``pro-mp_run_mujoco.py``): inner step
0.1, Adam 1e-3, 5 PPO epochs of one minibatch, clip 0.3, a fixed inner KL coefficient of
5e-4, 40 tasks x 20 episodes, (64, 64) tanh policy, GAE lambda 1 with the linear feature
baseline and advantages normalised per task.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch.nn.utils import parameters_to_vector

from metarl.algos.advantages import masked_mean
from metarl.algos.base import LearnerConfig
from metarl.algos.maml import adapt
from metarl.algos.maml_trpo import InnerStepLearner, MAMLAdaptation
from metarl.algos.policy_gradient import (
    TaskData,
    gaussian_kl,
    gaussian_log_prob,
    per_step_log_std,
    ppo_clip_loss,
)
from metarl.checkpoint import load_outer_optimizer_state, outer_optimizer_state
from metarl.policies import GaussianMLPPolicy
from metarl.task import Task

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ProMPConfig(LearnerConfig):
    """ProMP's settings (beyond :class:`~metarl.algos.base.LearnerConfig`); the defaults are
    the authors' MuJoCo run script's.

    Attributes:
        inner_steps: inner policy-gradient steps (each on fresh episodes).
        inner_lr: the inner step size.
        learning_rate: the outer Adam's learning rate.
        ppo_epochs: outer Adam steps per meta-iteration, each on the whole meta-batch (the
            authors' ``num_promp_steps``).
        clip_eps: the PPO clip of the outer likelihood ratio.
        anneal_factor: ``clip_eps`` is multiplied by this once per iteration (1: constant).
        inner_kl_penalty: the initial coefficient of each inner step's KL penalty.
        adaptive_inner_kl_penalty: adapt the coefficients towards ``target_inner_kl``.
        target_inner_kl: the inner KL the adaptive coefficients aim at.
    """

    inner_steps: int = 1
    inner_lr: float = 0.1
    learning_rate: float = 1e-3
    ppo_epochs: int = 5
    clip_eps: float = 0.3
    anneal_factor: float = 1.0
    inner_kl_penalty: float = 5e-4
    adaptive_inner_kl_penalty: bool = False
    target_inner_kl: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("inner_steps", "ppo_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("inner_lr", "learning_rate", "target_inner_kl"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not 0 < self.clip_eps < 1:
            raise ValueError(f"clip_eps must be in (0, 1), got {self.clip_eps}")
        if not 0 < self.anneal_factor <= 1:
            raise ValueError(f"anneal_factor must be in (0, 1], got {self.anneal_factor}")
        if not (self.inner_kl_penalty >= 0 and math.isfinite(self.inner_kl_penalty)):
            raise ValueError(
                f"inner_kl_penalty must be a finite number >= 0, got {self.inner_kl_penalty}"
            )


class ProMPAdaptation(MAMLAdaptation):
    """MAML-TRPO's inner procedure (see the module doc), keeping the parameters that sampled
    each inner batch: ProMP's surrogate and inner KL are taken against them."""

    def __init__(self, learner: ProMP, n_tasks: int, step_sizes: Sequence[float] | None = None):
        super().__init__(learner, n_tasks, step_sizes)
        #: The stacked parameters that sampled each inner batch, one dict per step taken.
        self.sampling_params: list[Params] = []

    def step(self, batch: Any) -> None:
        self.sampling_params.append(self.params)
        super().step(batch)


def stacked_outputs(
    policy: GaussianMLPPolicy, params: Params, obs: torch.Tensor, stacked: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy's means ``[tasks, E, T, A]`` and per-step log-stds on ``obs`` ``[tasks, E,
    T, obs_dim]``, under one parameter dict for every task or (``stacked``) one per task."""
    if stacked:
        mean, log_std = policy.mean_and_log_std_stacked(obs, params)
        return mean, per_step_log_std(log_std, mean)
    mean, log_std = torch.func.functional_call(policy, params, (obs,))
    return mean, log_std.expand_as(mean)


def promp_objective(
    policy: GaussianMLPPolicy,
    params: Params,
    inner: Sequence[TaskData],
    inner_old: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    valid: TaskData,
    valid_old: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    inner_lr: float,
    clip_eps: float,
    inner_kl_coeffs: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ProMP's meta-objective at ``params`` (the meta-parameters, one dict for all tasks):
    ``(loss, inner_kls [steps], outer_kl)``, the loss differentiable (second order) through
    the LVC inner step(s).

    Args:
        inner: the inner batches' data, one per step.
        inner_old: per inner step, what the policy that sampled it gave on it: the
            log-probabilities of its actions ``[tasks, E, T]``, its means and per-step
            log-stds ``[tasks, E, T, A]`` (constants).
        valid: the post-adaptation batch's data.
        valid_old: the same for it, under the (adapted) policy that sampled it.
    """
    current, stacked = dict(params), False
    inner_kls = []
    for data, (old_log_prob, old_mean, old_log_std) in zip(inner, inner_old, strict=True):
        mean, log_std = stacked_outputs(policy, current, data.observations, stacked)
        kl = gaussian_kl(old_mean, old_log_std, mean, log_std)
        inner_kls.append(masked_mean(kl, data.mask, (1, 2)).mean())
        current = adapt(policy, current, data, inner_lr, False, stacked, old_log_prob)
        stacked = True
    old_log_prob, old_mean, old_log_std = valid_old
    mean, log_std = stacked_outputs(policy, current, valid.observations, True)
    log_prob = gaussian_log_prob(mean, log_std, valid.actions)
    surrogate = ppo_clip_loss(log_prob, old_log_prob, valid.advantages, valid.mask, clip_eps)
    kls = torch.stack(inner_kls)
    penalty = (torch.as_tensor(inner_kl_coeffs, dtype=kls.dtype) * kls).mean()
    outer_kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), valid.mask, (1, 2))
    return surrogate.mean() + penalty, kls, outer_kl.mean()


class ProMP(InnerStepLearner):
    """ProMP; see the module doc. ``ProMP(config, run_dir)``."""

    algorithm = "promp"
    display_name = "ProMP"
    config_class = ProMPConfig
    config: ProMPConfig

    def __init__(self, config: ProMPConfig, run_dir: Any = None) -> None:
        super().__init__(config, run_dir)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        #: Each inner step's KL coefficient (adapted when ``adaptive_inner_kl_penalty``).
        self.inner_kl_coeffs = [config.inner_kl_penalty] * config.inner_steps

    def adaptation(
        self,
        tasks: Sequence[Task],
        seed: int | None = None,
        step_sizes: Sequence[float] | None = None,
    ) -> ProMPAdaptation:
        """The inner procedure from the current parameters (MAML-TRPO's; ``seed`` is unused,
        ``step_sizes`` as :class:`~metarl.algos.maml_trpo.MAMLAdaptation`'s)."""
        return ProMPAdaptation(self, len(tasks), step_sizes)

    def clip_eps(self) -> float:
        """The outer clip at this iteration (annealed by ``anneal_factor`` per iteration)."""
        return self.config.clip_eps * self.config.anneal_factor**self.iteration

    def meta_update(self, adaptation: MAMLAdaptation, valid: TaskData) -> dict[str, Any]:
        """The PPO epochs through the LVC inner step(s)."""
        return self._outer_update(cast(ProMPAdaptation, adaptation), valid)

    @torch.no_grad()
    def _sampling_outputs(
        self, params: Params, data: TaskData
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities of ``data``'s actions, means and per-step log-stds under the
        stacked ``params`` that sampled it, recomputed with the training forward (so the
        surrogates' ratios are exactly 1 at those parameters)."""
        mean, log_std = stacked_outputs(self.policy, params, data.observations, True)
        return gaussian_log_prob(mean, log_std, data.actions), mean, log_std

    def _outer_update(self, adaptation: ProMPAdaptation, valid: TaskData) -> dict[str, Any]:
        cfg, policy = self.config, self.policy
        inner = adaptation.data
        inner_old = [
            self._sampling_outputs(params, data)
            for params, data in zip(adaptation.sampling_params, inner, strict=True)
        ]
        valid_old = self._sampling_outputs(adaptation.params, valid)
        clip_eps = self.clip_eps()

        def objective() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return promp_objective(
                policy,
                policy.params(),
                inner,
                inner_old,
                valid,
                valid_old,
                cfg.inner_lr,
                clip_eps,
                self.inner_kl_coeffs,
            )

        before = [p.detach().clone() for p in policy.parameters()]
        optimizer_before = copy.deepcopy(self.optimizer.state_dict())
        loss_before = float("nan")
        params = list(policy.parameters())
        for epoch in range(cfg.ppo_epochs):
            loss, _, _ = objective()
            grads = torch.autograd.grad(loss, params)
            if epoch == 0:
                loss_before = float(loss.detach())
            if not (torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)):
                with torch.no_grad():  # never an update from a non-finite gradient
                    for p, value in zip(params, before, strict=True):
                        p.copy_(value)
                self.optimizer.load_state_dict(optimizer_before)
                return {"loss_before": loss_before, "update": "skipped: non-finite gradient"}
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            loss_after, inner_kls, outer_kl = objective()
        kls = [float(kl) for kl in inner_kls]
        stats: dict[str, Any] = {
            "loss_before": loss_before,
            "loss_after": float(loss_after),
            "inner_kl": sum(kls) / len(kls),
            "outer_kl": float(outer_kl),
            "inner_kl_coeff": sum(self.inner_kl_coeffs) / len(self.inner_kl_coeffs),
            "clip_eps": clip_eps,
            "update": "applied",
            "param_norm": float(parameters_to_vector(params).detach().norm()),
        }
        if cfg.adaptive_inner_kl_penalty:
            self.inner_kl_coeffs = [
                adapted_kl_coeff(coeff, kl, cfg.target_inner_kl)
                for coeff, kl in zip(self.inner_kl_coeffs, kls, strict=True)
            ]
        return stats

    # ------------------------------------------------------------------ state
    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The outer Adam's state and the inner KL coefficients."""
        tensors, document = outer_optimizer_state(self.optimizer)
        return tensors, {**document, "inner_kl_coeffs": list(self.inner_kl_coeffs)}

    def load_extra_state(self, tensors: Any, state: Any) -> None:
        load_outer_optimizer_state(self.optimizer, tensors, state)
        coeffs = state.get("inner_kl_coeffs")
        if (
            not isinstance(coeffs, list)
            or len(coeffs) != self.config.inner_steps
            or not all(isinstance(c, (int, float)) and math.isfinite(c) and c >= 0 for c in coeffs)
        ):
            raise ValueError(
                f"the checkpoint's inner_kl_coeffs must be {self.config.inner_steps} finite "
                f"numbers >= 0, got {coeffs!r}"
            )
        self.inner_kl_coeffs = [float(c) for c in coeffs]


def adapted_kl_coeff(coeff: float, kl: float, target: float) -> float:
    """ProMP's adaptive KL coefficient: halved when ``kl < target / 1.5``, doubled when
    ``kl > 1.5 target``, else kept."""
    if kl < target / 1.5:
        return coeff / 2
    if kl > target * 1.5:
        return coeff * 2
    return coeff
