"""Policy-gradient pieces on padded episode batches: the per-task data a gradient needs
(advantages from a freshly fitted linear baseline) and the Gaussian log-likelihood and KL.

Shared by MAML-TRPO (its inner loop and its outer surrogate), ProMP (its inner surrogate and
its outer PPO objective) and Reptile (its inner loop).
The losses take log-probabilities shaped ``[..., episodes, T]`` and average over each task's
real steps, so a ``[tasks, ...]`` batch gives one loss per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from metarl.algos.advantages import discounted_returns, gae, masked_mean, normalize_per_task
from metarl.algos.baseline import linear_baseline_values
from metarl.sampling import EpisodeBatch

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class TaskData:
    """What a policy gradient needs from a batch, ``[tasks, episodes, T, ...]``: observations,
    actions, advantages (normalised per task) and the mask of real steps."""

    observations: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_batch(cls, batch: EpisodeBatch, gamma: float, gae_lambda: float) -> TaskData:
        """Fit a linear baseline per task on ``batch`` itself, then GAE, then normalise per
        task (as MAML does, for the inner loop and the outer surrogate alike)."""
        mask = batch.mask
        returns = discounted_returns(batch.rewards, mask, gamma)
        values = linear_baseline_values(batch.observations, returns, mask)
        advantages = gae(batch.rewards, values, mask, gamma, gae_lambda)
        return cls(
            observations=batch.observations,
            actions=batch.actions,
            advantages=normalize_per_task(advantages, mask),
            mask=mask,
        )

    def first_tasks(self, n: int) -> TaskData:
        """The data of the first ``n`` tasks only (tasks are drawn i.i.d., so these are a
        uniform sample of the meta-batch's tasks)."""
        return TaskData(self.observations[:n], self.actions[:n], self.advantages[:n], self.mask[:n])


def gaussian_log_prob(
    mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """Log-density of ``actions`` under the diagonal Gaussian, summed over the last dim."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - _HALF_LOG_TWO_PI).sum(-1)


def per_step_log_std(log_std: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """A per-task log-std ``[tasks, A]`` broadcast to the means ``[tasks, E, T, A]``."""
    return log_std.view(log_std.shape[0], 1, 1, -1).expand_as(mean)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    """``KL(p || q)`` of two diagonal Gaussians, summed over the last dim."""
    var_p, var_q = torch.exp(2 * log_std_p), torch.exp(2 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5).sum(-1)


def vpg_loss(log_prob: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Vanilla policy gradient: ``-mean(log pi(a|s) * A)`` over each task's real steps."""
    return -masked_mean(log_prob * advantages, mask, (-2, -1))


def lvc_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """ProMP's low-variance-curvature surrogate (Rothfuss et al. 2019): ``-mean(r A)`` with
    ``r = pi(a|s) / pi_old(a|s)``, ``pi_old`` the policy that sampled the steps (a constant),
    over each task's real steps. At the sampling parameters its gradient is the vanilla policy
    gradient's (``r = 1``), and its Hessian adds ``E[grad log pi grad log pi^T A]`` to the
    ``E[hess log pi A]`` of :func:`vpg_loss`: the curvature a meta-gradient through an inner
    step sees."""
    ratio = torch.exp(log_prob - old_log_prob)
    return -masked_mean(ratio * advantages, mask, (-2, -1))


def ppo_clip_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017), ``-mean(min(r A, clip(r) A))`` with
    ``r = pi(a|s) / pi_old(a|s)``, over each task's real steps."""
    ratio = torch.exp(log_prob - old_log_prob)
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -masked_mean(torch.minimum(ratio * advantages, clipped * advantages), mask, (-2, -1))
