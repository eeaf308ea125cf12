"""What every policy of metarl shares: its parameters as an explicit dict.

Meta-learning needs many versions of one network (the meta-parameters, each task's adapted
copy), so a policy's parameters travel as a ``dict[str, Tensor]`` keyed like
``named_parameters()``, and a batch of tasks' versions as one dict of ``[tasks, ...]``
tensors (:meth:`ParameterDictPolicy.stack_params`). The sampler evaluates a policy this way
at every time step (``acting_forward``, or ``acting_step`` for a recurrent policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from metarl.family import TaskFamily

Params = Mapping[str, torch.Tensor]


def family_dims(family: TaskFamily) -> tuple[int, int]:
    """``(obs_dim, act_dim)`` of ``family``'s envs (their flattened observation and their
    action), read from an env of its default task."""
    probe = family.make_env(family.default_task())
    try:
        return int(math.prod(probe.observation_space.shape)), int(probe.action_space.shape[0])
    finally:
        probe.close()


class ParameterDictPolicy(nn.Module):
    """A module whose parameters are also handled as dicts (see the module doc).

    Subclasses set ``obs_dim`` and ``act_dim``; a recurrent one sets ``recurrent = True``
    and gives ``hidden_size``."""

    #: Whether the policy carries a hidden state from step to step (the sampler then keeps
    #: one per episode slot: :class:`metarl.sampling.RecurrentState`).
    recurrent: bool = False
    obs_dim: int
    act_dim: int

    def params(self) -> dict[str, torch.Tensor]:
        """The meta-parameters as a dict (the tensors themselves, not copies)."""
        return dict(self.named_parameters())

    def check_params(self, params: Params) -> None:
        """Raise ``ValueError`` unless ``params`` has exactly this policy's names and shapes."""
        own = {name: p.shape for name, p in self.named_parameters()}
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict of tensors, got {type(params).__name__}")
        missing, extra = sorted(set(own) - set(params)), sorted(set(params) - set(own))
        if missing or extra:
            raise ValueError(
                f"params do not match the policy: missing {missing}, unexpected {extra}"
            )
        for name, shape in own.items():
            if tuple(params[name].shape) != tuple(shape):
                raise ValueError(
                    f"params[{name!r}] has shape {tuple(params[name].shape)}, "
                    f"expected {tuple(shape)}"
                )

    @staticmethod
    def stack_params(params: Sequence[Params]) -> dict[str, torch.Tensor]:
        """One dict per task -> one dict of tensors with a leading task axis."""
        return {name: torch.stack([p[name] for p in params]) for name in params[0]}

    @staticmethod
    def unstack_params(stacked: Params) -> list[dict[str, torch.Tensor]]:
        """The inverse of :meth:`stack_params`: one (detached) dict per task."""
        n = next(iter(stacked.values())).shape[0]
        return [{k: v[i].detach() for k, v in stacked.items()} for i in range(n)]
