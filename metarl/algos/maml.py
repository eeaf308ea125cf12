"""MAML's adaptation and meta-objective for a Gaussian MLP policy, batched over tasks (ProMP's
inner step too: the same step with the low-variance-curvature surrogate).

Pure functions of the parameters and the data, so they can be differentiated (the
meta-gradient is second order: it flows through the inner update) and checked against finite
differences. All tasks are processed at once with ``torch.func.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from metarl.algos.advantages import masked_mean
from metarl.algos.policy_gradient import (
    TaskData,
    gaussian_kl,
    gaussian_log_prob,
    lvc_loss,
    per_step_log_std,
    vpg_loss,
)
from metarl.policies import GaussianMLPPolicy

Params = Mapping[str, torch.Tensor]


def _inner_loss(
    policy: GaussianMLPPolicy,
    params: Params,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    old_log_prob: torch.Tensor | None = None,
) -> torch.Tensor:
    """One task's inner loss: the vanilla policy-gradient loss ``-mean(log pi(a|s) * A)``
    over real steps, or with ``old_log_prob`` (the sampling policy's) ProMP's
    low-variance-curvature surrogate ``-mean(pi(a|s) / pi_old(a|s) * A)``."""
    mean, log_std = torch.func.functional_call(policy, dict(params), (obs,))
    log_prob = gaussian_log_prob(mean, log_std, actions)
    if old_log_prob is None:
        return vpg_loss(log_prob, advantages, mask)
    return lvc_loss(log_prob, old_log_prob, advantages, mask)


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    data: TaskData,
    inner_lr: float,
    first_order: bool = False,
    stacked: bool = False,
    old_log_prob: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One inner gradient step per task: ``theta_i = theta - inner_lr * grad L_i(theta)``.

    Args:
        params: the parameters to adapt: one dict for every task, or (``stacked=True``) a
            dict of ``[tasks, ...]`` tensors, one slice per task (a previous step's result).
        data: ``[tasks, ...]`` data of the inner batch.
        first_order: detach the inner gradient (FOMAML): the meta-gradient then skips the
            second-order term.
        old_log_prob: ``[tasks, episodes, T]`` log-probabilities of the batch's actions under
            the policy that sampled it: the inner loss is then ProMP's low-variance-curvature
            surrogate (the same step at the sampling parameters, another curvature) instead
            of the vanilla policy-gradient loss.

    Returns the adapted parameters, stacked ``[tasks, ...]``, with their graph to ``params``
    unless ``first_order``.
    """
    inputs = [data.observations, data.actions, data.advantages, data.mask]
    if old_log_prob is not None:
        inputs.append(old_log_prob.detach())

    def loss(p: Params, *task: torch.Tensor) -> torch.Tensor:
        return _inner_loss(policy, p, *task)

    in_dims = (0 if stacked else None, *[0] * len(inputs))
    grads = torch.func.vmap(torch.func.grad(loss), in_dims=in_dims)(dict(params), *inputs)
    adapted = {}
    for name, value in params.items():
        grad = grads[name].detach() if first_order else grads[name]
        base = value if stacked else value.unsqueeze(0)
        adapted[name] = base - inner_lr * grad
    return adapted


def adapt_steps(
    policy: GaussianMLPPolicy,
    params: Params,
    inner: Sequence[TaskData],
    inner_lr: float,
    first_order: bool = False,
    old_log_probs: Sequence[torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """``len(inner)`` inner steps, step k on ``inner[k]`` (with ``old_log_probs[k]``, the
    LVC surrogate's, if given); the adapted params, stacked."""
    adapted, stacked = dict(params), False
    for k, data in enumerate(inner):
        old = None if old_log_probs is None else old_log_probs[k]
        adapted = adapt(policy, adapted, data, inner_lr, first_order, stacked, old)
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
    return surrogate_and_kl_of_outputs(mean, log_std, valid, old_mean, old_log_std)


def surrogate_and_kl_of_outputs(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    valid: TaskData,
    old_mean: torch.Tensor,
    old_log_std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`surrogate_and_kl` given the adapted policy's outputs on ``valid``'s observations
    (means ``[tasks, E, T, A]``, log-stds ``[tasks, A]``), for a caller that has them."""
    log_std = per_step_log_std(log_std, mean)
    old_log_std = per_step_log_std(old_log_std, old_mean)
    log_ratio = gaussian_log_prob(mean, log_std, valid.actions) - gaussian_log_prob(
        old_mean, old_log_std, valid.actions
    )
    dims = (1, 2)
    loss = -masked_mean(torch.exp(log_ratio) * valid.advantages, valid.mask, dims).mean()
    kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), valid.mask, dims).mean()
    return loss, kl


def kl_fisher_vector_product(
    policy: GaussianMLPPolicy,
    params: Params,
    inner: Sequence[TaskData],
    valid: TaskData,
    inner_lr: float,
    first_order: bool = False,
    damping: float = 0.0,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (H + damping I) v`` for ``H`` the Hessian, at ``params``, of the mean
    post-adaptation ``KL(old || new)`` that :func:`surrogate_and_kl` computes, with ``old``
    the policy at ``params`` itself.

    At that point the KL's gradient w.r.t. the policy's outputs is zero, so its Hessian is
    exactly the Gauss-Newton (Fisher) matrix ``J^T M J``: ``J`` the Jacobian of the adapted
    policy's means and log-stds w.r.t. ``params`` (through the inner steps), ``M`` the KL's
    curvature in them (``1/sigma^2`` per mean, 2 per log-std, weighted as the KL averages).
    A product is then one forward-mode pass (``J v``) and one reverse pass (``J^T u``), much
    cheaper than differentiating the KL's gradient (a third-order graph through the inner
    gradient). Vectors are flat, in ``params`` order.
    """
    names = list(params)
    base = {name: params[name].detach() for name in names}
    shapes = [base[name].shape for name in names]
    sizes = [base[name].numel() for name in names]

    def outputs(p: Params) -> tuple[torch.Tensor, torch.Tensor]:
        adapted = adapt_steps(policy, p, inner, inner_lr, first_order)
        return policy.mean_and_log_std_stacked(valid.observations, adapted)

    (mean, log_std), pullback = torch.func.vjp(outputs, base)
    tasks = mean.shape[0]
    count = valid.mask.sum(dim=(1, 2), keepdim=True).clamp(min=1.0)
    weight = valid.mask / count / tasks  # [tasks, E, T]: the KL's averaging
    mean_curvature = weight.unsqueeze(-1) * torch.exp(-2 * log_std.detach()).view(tasks, 1, 1, -1)
    log_std_curvature = 2 * weight.sum(dim=(1, 2)).unsqueeze(-1)  # [tasks, 1]

    def as_dict(vector: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(vector, sizes)
        return {n: part.view(shape) for n, part, shape in zip(names, parts, shapes, strict=True)}

    def fvp(vector: torch.Tensor) -> torch.Tensor:
        _, (d_mean, d_log_std) = torch.func.jvp(outputs, (base,), (as_dict(vector),))
        (grads,) = pullback((mean_curvature * d_mean, log_std_curvature * d_log_std))
        return torch.cat([grads[n].reshape(-1) for n in names]) + damping * vector

    return fvp
