"""Returns and advantages of padded episode batches: ``[..., time]`` tensors with a mask.

Every function here takes the sampler's layout (any leading dimensions, time last) and the
mask that marks real steps (1.0) from padding (0.0); padded and masked-out steps never
contribute. An episode is treated as ending where its mask ends: early terminations (a Hopper
that falls) and the horizon alike bootstrap nothing after the last step, as the MAML authors'
code and pytorch-maml-rl do.
"""

from __future__ import annotations

import torch


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """``R_t = r_t + gamma * R_{t+1}`` within each episode, 0 on padding. ``[..., T]``."""
    rewards = rewards * mask
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running * mask[..., t]
        out[..., t] = running
    return out * mask


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016), 0 on padding. ``[..., T]``.

    ``A_t = sum_k (gamma * lam)^k delta_{t+k}`` with
    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``V`` zero after the episode's last step.
    With ``lam = 1`` this is the discounted return minus the baseline.
    """
    values = values * mask
    next_values = torch.zeros_like(values)
    next_values[..., :-1] = values[..., 1:]
    deltas = (rewards + gamma * next_values - values) * mask
    out = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[..., 0])
    for t in range(deltas.shape[-1] - 1, -1, -1):
        running = deltas[..., t] + gamma * lam * running * mask[..., t]
        out[..., t] = running
    return out * mask


def normalize_per_task(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over the real steps of each task (dim 0), 0 on padding.

    ``values`` and ``mask`` are ``[tasks, ...]``; the mean and the (biased) standard deviation
    are taken over every real step of the task. A task with no real step (every episode
    unstable) gets zeros.
    """
    dims = tuple(range(1, values.dim()))
    count = mask.sum(dim=dims, keepdim=True).clamp(min=1.0)
    mean = (values * mask).sum(dim=dims, keepdim=True) / count
    centred = (values - mean) * mask
    std = ((centred**2).sum(dim=dims, keepdim=True) / count).sqrt()
    return centred / (std + eps)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean of ``values`` over the real steps, reduced over ``dims`` (0 if none is real)."""
    return (values * mask).sum(dim=dims) / mask.sum(dim=dims).clamp(min=1.0)
