"""What a recurrent policy carries from step to step of an episode slot, and from one sampler
call to the next: the hidden state, the previous action and reward, and the done flag.

RL² runs a *trial* of several episodes of one task with one hidden state: each episode of
the trial is one :meth:`metarl.Sampler.sample` call, given the state the previous call left
(``batch.final_state``). A trial starts from :meth:`RecurrentState.initial` (zeros); within
an episode, each step's action and reward become the next step's inputs; at the end of a call
every slot's episode has ended, so the done flag is set, and the next episode's first step
sees it with the previous episode's last action and reward (Duan et al.'s formulation: the
trial is one stream in which the env happened to reset).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RecurrentState:
    """Per episode slot, ``[tasks, episodes, ...]``: ``hidden`` ``[..., hidden_size]``,
    ``prev_action`` ``[..., act_dim]``, ``prev_reward`` and ``done`` ``[...]`` (float32)."""

    hidden: torch.Tensor
    prev_action: torch.Tensor
    prev_reward: torch.Tensor
    done: torch.Tensor

    @classmethod
    def initial(cls, n_tasks: int, episodes: int, hidden_size: int, act_dim: int) -> RecurrentState:
        """The start of a trial: every input and the hidden state zero."""
        return cls(
            torch.zeros(n_tasks, episodes, hidden_size),
            torch.zeros(n_tasks, episodes, act_dim),
            torch.zeros(n_tasks, episodes),
            torch.zeros(n_tasks, episodes),
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(tasks, episodes)``."""
        return tuple(self.done.shape)  # type: ignore[return-value]

    def clone(self) -> RecurrentState:
        return RecurrentState(*(t.clone() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.hidden, self.prev_action, self.prev_reward, self.done)

    def rows(self, rows: slice | torch.Tensor) -> RecurrentState:
        """The state of some tasks (views for a slice)."""
        return RecurrentState(*(t[rows] for t in self.tensors()))

    def check(self, n_tasks: int, episodes: int, hidden_size: int, act_dim: int) -> None:
        """A ``ValueError`` unless the state fits a batch of ``n_tasks`` x ``episodes`` slots
        of this policy, with finite values."""
        want = {
            "hidden": (n_tasks, episodes, hidden_size),
            "prev_action": (n_tasks, episodes, act_dim),
            "prev_reward": (n_tasks, episodes),
            "done": (n_tasks, episodes),
        }
        for name, shape in want.items():
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise ValueError(
                    f"state.{name} must be a tensor of shape {shape} (tasks, episodes, ...), "
                    f"got {got}; continue a trial with the same tasks and episodes per task, "
                    f"or start one with state=None"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"state.{name} contains NaN or infinity")
