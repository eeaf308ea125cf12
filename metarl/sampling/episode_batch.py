"""The sampler's output: every episode of every task, as padded tensors.

Layout ``[tasks, episodes, time, ...]``; ``time`` runs to the family's horizon. Episodes that
end early (a Hopper that falls) are padded with zeros, and :attr:`EpisodeBatch.mask` tells the
real steps (1.0) from the padding (0.0). Episodes whose physics went unstable are masked out
entirely (their steps ran, so they count in :attr:`EpisodeBatch.num_env_steps`, but no value
from them should reach a learner: ending an episode by blowing up the simulation must never look
like a reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from metarl.sampling.recurrent import RecurrentState
from metarl.task import Task


@dataclass(frozen=True)
class EpisodeBatch:
    """Episodes of several tasks, sampled in lock-step.

    Attributes:
        tasks: the task of each row, ``len(tasks) == num_tasks``.
        observations: ``[tasks, episodes, time, obs_dim]`` float32, the observation each action
            was chosen from.
        actions: ``[tasks, episodes, time, act_dim]`` float32, the policy's actions as sampled
            (before the env clips them to its action space; the log-probs are of these).
        rewards: ``[tasks, episodes, time]`` float32.
        log_probs: ``[tasks, episodes, time]`` float32, log-probability of each action under the
            parameters it was sampled with.
        mask: ``[tasks, episodes, time]`` float32, 1.0 for a real step, 0.0 for padding after
            the episode ended and for every step of an episode whose physics went unstable.
        lengths: ``[tasks, episodes]`` int64, the number of env steps each episode ran.
        terminated: ``[tasks, episodes]`` bool, the episode ended in a terminal state (e.g. the
            robot fell), not by reaching the horizon.
        sim_unstable: ``[tasks, episodes]`` bool, the physics went unstable (the episode is
            masked out).
        reset_seeds: ``[tasks, episodes]`` int64, the seed each episode's env was reset with:
            ``family.make_env(task).reset(seed=...)`` and the clipped actions replay it exactly.
        final_state: for a recurrent policy, the state each slot ends the batch with, to
            continue the trial with its next episode (:mod:`metarl.sampling.recurrent`);
            None otherwise.
    """

    tasks: tuple[Task, ...]
    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    log_probs: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    terminated: torch.Tensor
    sim_unstable: torch.Tensor
    reset_seeds: torch.Tensor
    final_state: RecurrentState | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if self.rewards.ndim != 3:
            raise ValueError(f"rewards must be [tasks, episodes, time], got {self.rewards.shape}")
        per_step = tuple(self.rewards.shape)
        lead = per_step[:2]
        if lead[0] != len(self.tasks):
            raise ValueError(f"{len(self.tasks)} tasks given for {lead[0]} rows of episodes")
        for f in ("observations", "actions"):
            shape = tuple(getattr(self, f).shape)
            if len(shape) != 4 or shape[:3] != per_step:
                raise ValueError(f"{f} has shape {shape}; expected {(*per_step, 'dim')}")
        for f, want in (
            ("log_probs", per_step),
            ("mask", per_step),
            ("lengths", lead),
            ("terminated", lead),
            ("sim_unstable", lead),
            ("reset_seeds", lead),
        ):
            shape = tuple(getattr(self, f).shape)
            if shape != want:
                raise ValueError(f"{f} has shape {shape}; expected {want}")
        if self.final_state is not None and self.final_state.shape != lead:
            raise ValueError(f"final_state is for {self.final_state.shape} slots; expected {lead}")

    # ------------------------------------------------------------------ sizes
    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]

    @property
    def episodes_per_task(self) -> int:
        return self.rewards.shape[1]

    @property
    def horizon(self) -> int:
        """Length of the time axis (the family's horizon)."""
        return self.rewards.shape[2]

    @property
    def num_env_steps(self) -> int:
        """Env steps that really ran (padding excluded; unstable episodes included)."""
        return int(self.lengths.sum())

    # ------------------------------------------------------------------ views
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each episode, ``[tasks, episodes]`` (0 for a masked-out
        unstable episode)."""
        return (self.rewards * self.mask).sum(dim=-1)

    def select(self, task_indices: int | Sequence[int] | slice) -> EpisodeBatch:
        """The batch restricted to some tasks (an int keeps the task axis, of size 1)."""
        if isinstance(task_indices, int):
            task_indices = [task_indices]
        index = torch.arange(self.num_tasks)[task_indices]
        tensors = [f.name for f in fields(self) if f.name not in ("tasks", "final_state")]
        values = {name: getattr(self, name)[index] for name in tensors}
        state = None if self.final_state is None else self.final_state.rows(index)
        return EpisodeBatch(
            tasks=tuple(self.tasks[i] for i in index.tolist()), final_state=state, **values
        )

    def __repr__(self) -> str:
        return (
            f"EpisodeBatch(tasks={self.num_tasks}, episodes={self.episodes_per_task}, "
            f"horizon={self.horizon}, obs_dim={self.observations.shape[-1]}, "
            f"act_dim={self.actions.shape[-1]}, env_steps={self.num_env_steps})"
        )
