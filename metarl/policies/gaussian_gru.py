"""A recurrent Gaussian policy (GRU), for RL² (Duan et al. 2016; Wang et al. 2016).

Its input at each step is the observation, the previous action, the previous reward and a
done flag (1.0 at the first step of an episode that follows another in the same trial), so
the hidden state, carried across the episodes of a trial, can learn what the task is. The
action distribution is a diagonal Gaussian whose mean is a linear read-out of the hidden
state, with a state-independent, learned log standard deviation.

Two ways to run it, the same function (within float32 rounding):

- :meth:`GaussianGRUPolicy.forward`, over whole sequences with ``torch.nn.GRU`` (training);
- :meth:`GaussianGRUPolicy.acting_step`, one step for every episode of every task at once,
  from an explicit parameter dict (stacked per task, as the sampler passes it), without
  autograd: the sampler's forward per time step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from metarl.policies.base import ParameterDictPolicy, Params, family_dims

if TYPE_CHECKING:
    from metarl.family import TaskFamily


class GaussianGRUPolicy(ParameterDictPolicy):
    """GRU policy over ``[obs, previous action, previous reward, done]``.

    Args:
        obs_dim: size of a (flat) observation.
        act_dim: size of an action.
        hidden_size: the GRU's hidden units (64, as garage's RL² examples).
        init_std: initial standard deviation of every action dimension.
    """

    recurrent = True

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_size: int = 64, init_std: float = 1.0
    ) -> None:
        super().__init__()
        sizes = (("obs_dim", obs_dim), ("act_dim", act_dim), ("hidden_size", hidden_size))
        for name, value in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not (isinstance(init_std, (int, float)) and math.isfinite(init_std) and init_std > 0):
            raise ValueError(f"init_std must be a finite number > 0, got {init_std!r}")
        self.obs_dim, self.act_dim, self.hidden_size = obs_dim, act_dim, hidden_size
        self.init_std = float(init_std)
        #: The GRU's input: the observation, the previous action and reward, the done flag.
        self.input_dim = obs_dim + act_dim + 2
        self.gru = nn.GRU(self.input_dim, hidden_size, batch_first=True)
        self.mean_head = nn.Linear(hidden_size, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(self.init_std)))
        nn.init.xavier_uniform_(self.mean_head.weight)
        nn.init.zeros_(self.mean_head.bias)

    @classmethod
    def for_family(
        cls, family: TaskFamily, hidden_size: int = 64, init_std: float = 1.0
    ) -> GaussianGRUPolicy:
        """A policy for ``family``'s envs (initialised from torch's global generator)."""
        obs_dim, act_dim = family_dims(family)
        return cls(obs_dim, act_dim, hidden_size, init_std)

    @staticmethod
    def inputs(
        obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor, done: torch.Tensor
    ) -> torch.Tensor:
        """The GRU's input ``[..., input_dim]`` from ``[..., obs_dim]`` observations,
        ``[..., act_dim]`` previous actions and ``[...]`` previous rewards and done flags."""
        return torch.cat([obs, prev_action, prev_reward.unsqueeze(-1), done.unsqueeze(-1)], dim=-1)

    def forward(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Over sequences ``[N, L, input_dim]`` from hidden states ``[N, hidden_size]`` (None:
        zeros): the means ``[N, L, act_dim]``, the log-std ``[act_dim]`` and the last hidden
        states ``[N, hidden_size]``. (Padding at the end of a sequence leaves the outputs
        before it as they are: the GRU runs forward in time.)"""
        h0 = None if hidden is None else hidden.unsqueeze(0).contiguous()
        out, h = self.gru(inputs, h0)
        return self.mean_head(out), self.log_std, h.squeeze(0)

    @torch.no_grad()
    def acting_step(
        self,
        params: Params,
        obs: torch.Tensor,
        hidden: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        done: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for ``[tasks, E, ...]`` episode slots under parameters stacked per task
        (:meth:`stack_params`): ``(means [tasks, E, act_dim], log-stds [tasks, act_dim], new
        hidden states [tasks, E, hidden_size])``, the GRU cell's equations as
        ``torch.nn.GRU`` computes them (gates in its order: reset, update, new)."""
        x = self.inputs(obs, prev_action, prev_reward, done)
        gi = torch.baddbmm(
            params["gru.bias_ih_l0"].unsqueeze(1), x, params["gru.weight_ih_l0"].transpose(1, 2)
        )
        gh = torch.baddbmm(
            params["gru.bias_hh_l0"].unsqueeze(1),
            hidden,
            params["gru.weight_hh_l0"].transpose(1, 2),
        )
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        new = torch.tanh(i_n + reset * h_n)
        hidden = (1.0 - update) * new + update * hidden
        mean = torch.baddbmm(
            params["mean_head.bias"].unsqueeze(1),
            hidden,
            params["mean_head.weight"].transpose(1, 2),
        )
        return mean, params["log_std"], hidden
