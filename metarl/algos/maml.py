"""MAML's adaptation and meta-objective for a Gaussian MLP policy, batched over tasks.

Pure functions of the parameters and the data, so they can be differentiated (the
meta-gradient is second order: it flows through the inner update) and checked against finite
differences. All tasks are processed at once with ``torch.func.vmap``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from metarl.algos.advantages import masked_mean
from metarl.algos.policy_gradient import TaskData, gaussian_kl, gaussian_log_prob
from metarl.policies import GaussianMLPPolicy

Params = Mapping[str, torch.Tensor]


def _vpg_loss(
    policy: GaussianMLPPolicy,
    params: Params,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """One task's vanilla policy-gradient loss: ``-mean(log pi(a|s) * A)`` over real steps."""
    mean, log_std = torch.func.functional_call(policy, dict(params), (obs,))
    log_prob = gaussian_log_prob(mean, log_std, actions)
    return -(log_prob * advantages * mask).sum() / mask.sum().clamp(min=1.0)


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    data: TaskData,
    fast_lr: float,
    first_order: bool = False,
    stacked: bool = False,
) -> dict[str, torch.Tensor]:
    """One inner gradient step per task: ``theta_i = theta - fast_lr * grad L_i(theta)``.

    Args:
        params: the parameters to adapt: one dict for every task, or (``stacked=True``) a
            dict of ``[tasks, ...]`` tensors, one slice per task (a previous step's result).
        data: ``[tasks, ...]`` data of the inner batch.
        first_order: detach the inner gradient (FOMAML): the meta-gradient then skips the
            second-order term.

    Returns the adapted parameters, stacked ``[tasks, ...]``, with their graph to ``params``
    unless ``first_order``.
    """

    def loss(p: Params, obs, actions, advantages, mask):
        return _vpg_loss(policy, p, obs, actions, advantages, mask)

    in_dims = (0 if stacked else None, 0, 0, 0, 0)
    grads = torch.func.vmap(torch.func.grad(loss), in_dims=in_dims)(
        dict(params), data.observations, data.actions, data.advantages, data.mask
    )
    adapted = {}
    for name, value in params.items():
        grad = grads[name].detach() if first_order else grads[name]
        base = value if stacked else value.unsqueeze(0)
        adapted[name] = base - fast_lr * grad
    return adapted


def adapt_steps(
    policy: GaussianMLPPolicy,
    params: Params,
    inner: Sequence[TaskData],
    fast_lr: float,
    first_order: bool = False,
) -> dict[str, torch.Tensor]:
    """``len(inner)`` inner steps, step k on ``inner[k]``; the adapted params, stacked."""
    adapted, stacked = dict(params), False
    for data in inner:
        adapted = adapt(policy, adapted, data, fast_lr, first_order, stacked)
        stacked = True
    return adapted


def surrogate_and_kl(
    policy: GaussianMLPPolicy,
    adapted: Params,
    valid: TaskData,
    old_mean: torch.Tensor,
    old_log_std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The TRPO surrogate loss ``-mean_i mean_t[ratio * A]`` and the mean ``KL(old || new)``
    over the post-adaptation episodes, for stacked adapted parameters."""
    mean, log_std = policy.mean_and_log_std_stacked(valid.observations, adapted)
    log_std = log_std.view(log_std.shape[0], 1, 1, -1).expand_as(mean)
    old_log_std = old_log_std.view(old_log_std.shape[0], 1, 1, -1).expand_as(old_mean)
    log_ratio = gaussian_log_prob(mean, log_std, valid.actions) - gaussian_log_prob(
        old_mean, old_log_std, valid.actions
    )
    dims = (1, 2)
    loss = -masked_mean(torch.exp(log_ratio) * valid.advantages, valid.mask, dims).mean()
    kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), valid.mask, dims).mean()
    return loss, kl
