"""RL² (Duan, Schulman, Chen, Bartlett, Sutskever and Abbeel 2016; Wang et al. 2016): a
recurrent policy whose hidden state, carried across the episodes of a trial on one task, is
the adaptation.

The policy (:class:`~metarl.policies.GaussianGRUPolicy`) sees at each step the observation,
the previous action, the previous reward and a done flag (1 at the first step of an episode
that follows another in the trial). A **trial** is ``trial_episodes`` episodes of one task;
the hidden state starts at zero with the trial and is never reset inside it. The sampler runs
every trial of every task in lock-step, one episode at a time, carrying each slot's state from
one episode to the next (:mod:`metarl.sampling.recurrent`); one batched forward per time step
stays the rule.

One meta-iteration:

1. draw ``meta_batch_size`` tasks and sample ``fast_batch_size`` trials of each: the same
   loop as every learner's adaptation (:func:`metarl.adaptation.adapt_and_sample`, one batch
   per episode of the trials), the adaptation being the hidden state;
2. concatenate each trial's episodes into one sequence (the trial is one long episode, as in
   the reference implementations: returns and advantages run across the episode boundaries),
   fit a linear feature baseline per task on its trials (features of the observation and of
   the step within the trial), GAE, advantages normalised over the batch;
3. PPO: ``ppo_epochs`` passes over minibatches of whole trials (the GRU is run over each
   trial from a zero state, so the gradient flows back through the trial), clipped surrogate,
   Adam, gradient-norm clipping.

Evaluation: adapting is running the policy, so in an adaptation report step ``k`` is the
return of the ``k``-th episode of the trials (``metarl evaluate RUN --steps 3``: four episodes,
as the gradient-based learners' 0..3 steps). ``learner.adapt`` and the exports that need
adapted *parameters* refuse, saying so: an RL² policy's parameters do not change with the task.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from metarl import seeds
from metarl.adaptation import Adaptation, adapt_and_sample
from metarl.algos.advantages import discounted_returns, gae, masked_mean
from metarl.algos.base import LearnerConfig, MetaLearner, inner_return_stats, mean_valid_return
from metarl.algos.baseline import linear_baseline_values
from metarl.algos.policy_gradient import gaussian_log_prob, ppo_clip_loss
from metarl.checkpoint import load_outer_optimizer_state, outer_optimizer_state
from metarl.family import TaskFamily
from metarl.policies import GaussianGRUPolicy
from metarl.sampling import EpisodeBatch, Sampler
from metarl.sampling.recurrent import RecurrentState
from metarl.task import Task
from metarl.torch_threads import torch_threads


@dataclass(frozen=True)
class RL2Config(LearnerConfig):
    """RL²'s settings (beyond :class:`~metarl.algos.base.LearnerConfig`, whose
    ``fast_batch_size`` is here the number of trials per task and iteration).

    The defaults follow garage's RL²-PPO HalfCheetah example where it has one (GRU of 64,
    GAE lambda 0.95, clip 0.2, 4 episodes per trial, 10 epochs over the whole batch of trials
    in one minibatch) and spend per iteration the episodes of a
    MAML-TRPO iteration of the paper's config (40 tasks x 10 trials x 4 episodes = 40 x 20 x
    2), so the two compare at equal env steps per iteration.

    Attributes:
        hidden_size: the GRU's hidden units.
        trial_episodes: episodes per trial, the hidden state carried across them.
        learning_rate: Adam's learning rate.
        ppo_epochs: passes over the batch per iteration.
        ppo_minibatches: minibatches (of whole trials) per pass.
        ppo_clip: the likelihood ratio's clip.
        max_grad_norm: the gradient's norm is clipped to this (None: not clipped).
        entropy_coef: weight of the policy's entropy bonus in the loss.
    """

    fast_batch_size: int = 10
    gae_lambda: float = 0.95
    hidden_size: int = 64
    trial_episodes: int = 4
    learning_rate: float = 1e-3
    ppo_epochs: int = 10
    ppo_minibatches: int = 1
    ppo_clip: float = 0.2
    max_grad_norm: float | None = 0.5
    entropy_coef: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hidden_size", "trial_episodes", "ppo_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        trials = self.meta_batch_size * self.fast_batch_size
        if not 1 <= self.ppo_minibatches <= trials:
            raise ValueError(
                f"ppo_minibatches must be between 1 and the trials of an iteration "
                f"(meta_batch_size x fast_batch_size = {trials}), got {self.ppo_minibatches}"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        if not 0 < self.ppo_clip < 1:
            raise ValueError(f"ppo_clip must be in (0, 1), got {self.ppo_clip}")
        if self.max_grad_norm is not None and not (
            self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)
        ):
            raise ValueError(
                f"max_grad_norm must be a finite number > 0 (or None), got {self.max_grad_norm}"
            )
        if not (self.entropy_coef >= 0 and math.isfinite(self.entropy_coef)):
            raise ValueError(f"entropy_coef must be a finite number >= 0, got {self.entropy_coef}")


class RL2Adaptation(Adaptation):
    """RL²'s adaptation: its policy's hidden state over a trial. Each :meth:`sample` is the
    next episode of every trial, from the state the previous one left; the parameters stay
    the meta-parameters and :meth:`step` has nothing to do."""

    def __init__(self, learner: RL2, n_tasks: int) -> None:
        self.params = learner.stacked_params(n_tasks)
        self._shared = {k: v.detach() for k, v in learner.policy.params().items()}
        #: Every slot's recurrent state after the episodes sampled so far (None: none yet).
        self.state: RecurrentState | None = None

    def sample(
        self, sampler: Sampler, tasks: Sequence[Task], episodes: int, seed: int | None
    ) -> EpisodeBatch:
        batch = sampler.sample(tasks, self._shared, episodes, seed=seed, state=self.state)
        self.state = batch.final_state
        return batch

    def step(self, batch: EpisodeBatch) -> None:
        """Nothing: the policy adapted in its hidden state while the batch was sampled."""


@dataclass(frozen=True)
class TrialData:
    """A batch of trials as sequences, ``[tasks, trials, L, ...]`` with ``L = trial_episodes
    x horizon``: each trial's episodes one after the other, padded at the end.

    Attributes:
        inputs: the GRU's input at each step (observation, previous action and reward, done).
        actions: the sampled actions.
        advantages: GAE over the trial, normalised over the batch's real steps.
        mask: 1.0 on the steps that enter the loss (real steps of trials whose physics stayed
            stable), 0.0 on padding.
    """

    inputs: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor

    @property
    def num_trials(self) -> int:
        return self.mask.shape[0] * self.mask.shape[1]


def pack_trials(batches: Sequence[EpisodeBatch], gamma: float, gae_lambda: float) -> TrialData:
    """The trials of ``batches`` (batch ``k``: the ``k``-th episode of every trial, ``[tasks,
    trials, T, ...]``) as :class:`TrialData`: each slot's real steps concatenated, with the
    inputs the policy saw while sampling them (its previous action and reward, and the done
    flag at the first step of every episode after the first)."""
    first = batches[0]
    n_tasks, trials, horizon = first.rewards.shape
    length = len(batches) * horizon
    steps = torch.arange(horizon)
    offset = torch.zeros(n_tasks, trials, dtype=torch.int64)
    fields = {
        "obs": torch.zeros(n_tasks, trials, length + 1, first.observations.shape[-1]),
        "actions": torch.zeros(n_tasks, trials, length + 1, first.actions.shape[-1]),
        "rewards": torch.zeros(n_tasks, trials, length + 1),
        "done": torch.zeros(n_tasks, trials, length + 1),
    }
    unstable = torch.zeros(n_tasks, trials, dtype=torch.bool)
    for k, batch in enumerate(batches):
        ran = steps < batch.lengths.unsqueeze(-1)  # [tasks, trials, T]
        # Real steps go to their place in the trial, padding to the spare last position.
        where = torch.where(ran, offset.unsqueeze(-1) + steps, length)
        for name, values in (
            ("obs", batch.observations),
            ("actions", batch.actions),
            ("rewards", batch.rewards),
        ):
            index = where.view(*where.shape, *[1] * (values.ndim - 3)).expand_as(values)
            fields[name].scatter_(2, index, values)
        if k:
            fields["done"].scatter_(2, offset.unsqueeze(-1), 1.0)
        offset = offset + batch.lengths
        unstable |= batch.sim_unstable
    fields = {name: value[:, :, :length] for name, value in fields.items()}
    real = (torch.arange(length) < offset.unsqueeze(-1)).float()
    prev_action = torch.cat(
        [torch.zeros_like(fields["actions"][:, :, :1]), fields["actions"][:, :, :-1]], dim=2
    )
    prev_reward = torch.cat(
        [torch.zeros_like(fields["rewards"][:, :, :1]), fields["rewards"][:, :, :-1]], dim=2
    )
    inputs = GaussianGRUPolicy.inputs(fields["obs"], prev_action, prev_reward, fields["done"])
    # A trial whose physics went unstable in any episode stays out of the loss entirely.
    mask = real * (~unstable).float().unsqueeze(-1)
    rewards = fields["rewards"] * mask
    returns = discounted_returns(rewards, mask, gamma)
    values = linear_baseline_values(fields["obs"], returns, mask)
    advantages = gae(rewards, values, mask, gamma, gae_lambda)
    mean = masked_mean(advantages, mask, (0, 1, 2))
    centred = (advantages - mean) * mask
    std = torch.sqrt(masked_mean(centred**2, mask, (0, 1, 2)))
    advantages = centred / (std + 1e-8)
    return TrialData(inputs, fields["actions"], advantages, mask)


class RL2(MetaLearner):
    """RL² with PPO; see the module doc. ``RL2(config, run_dir)``."""

    algorithm = "rl2"
    display_name = "RL²"
    config_class = RL2Config
    config: RL2Config
    adapts_parameters = False

    def __init__(self, config: RL2Config, run_dir: Any = None) -> None:
        super().__init__(config, run_dir)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)

    @classmethod
    def make_policy(cls, family: TaskFamily, config: LearnerConfig) -> GaussianGRUPolicy:
        """A :class:`~metarl.policies.GaussianGRUPolicy` of the config's ``hidden_size``
        and ``init_std`` (``hidden_sizes`` and ``activation`` do not apply)."""
        hidden_size = config.hidden_size  # type: ignore[attr-defined]
        return GaussianGRUPolicy.for_family(family, hidden_size, config.init_std)

    @classmethod
    def policy_shape_error(
        cls, policy: Mapping[str, torch.Tensor], config: LearnerConfig
    ) -> str | None:
        weight = policy.get("gru.weight_hh_l0")
        hidden_size = config.hidden_size  # type: ignore[attr-defined]
        if weight is None or tuple(weight.shape) != (3 * hidden_size, hidden_size):
            shape = None if weight is None else tuple(weight.shape)
            return (
                f"its config says hidden_size {hidden_size}, but its policy's GRU weights "
                f"gru.weight_hh_l0 have shape {shape}"
            )
        return None

    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> RL2Adaptation:
        """A trial from a zero hidden state (``seed`` is unused: running the policy has no
        randomness of its own beyond the sampler's)."""
        return RL2Adaptation(self, len(tasks))

    def adapt(self, task: Task, episodes: int, steps: int = 1) -> dict[str, torch.Tensor]:
        """Refused: RL² adapts in its policy's hidden state, not in its parameters, so there
        are no adapted parameters to return."""
        raise ValueError(
            "RL² adapts in its policy's hidden state over a trial, not in its parameters: "
            "there are no adapted parameters. Measure its adaptation with metarl.evaluate "
            "(step k: the k-th episode of each trial)"
        )

    # ------------------------------------------------------------------ meta-iteration
    def meta_step(self) -> dict[str, Any]:
        cfg = self.config
        tasks = self.family.sample_tasks(cfg.meta_batch_size, self.task_rng)
        result = adapt_and_sample(self, tasks, cfg.fast_batch_size, cfg.trial_episodes - 1)
        self.env_steps += sum(b.num_env_steps for b in result.batches)
        start = time.perf_counter()
        data = pack_trials(result.batches, cfg.gamma, cfg.gae_lambda)
        stats = self._ppo_update(data)
        returns = [mean_valid_return(b) for b in result.batches]
        stats.update(
            **inner_return_stats(returns[:-1]),
            return_after=returns[-1],
            sampling_seconds=result.sampling_seconds,
            optimisation_seconds=time.perf_counter() - start,
        )
        return stats

    def _ppo_update(self, data: TrialData) -> dict[str, Any]:
        """PPO over whole trials, on one PyTorch thread: a GRU's step is a few small matrix
        products, which a second thread only slows (on 2 cores, one pass over 400 trials of
        800 steps: 1.5 s on one thread, 4 s on two, beside other work)."""
        with torch_threads(1):
            return self._ppo_epochs(data)

    def _ppo_epochs(self, data: TrialData) -> dict[str, Any]:
        cfg, policy = self.config, self.policy
        n_tasks, trials, length = data.mask.shape
        inputs = data.inputs.reshape(n_tasks * trials, length, -1)
        actions = data.actions.reshape(n_tasks * trials, length, -1)
        advantages = data.advantages.reshape(n_tasks * trials, length)
        mask = data.mask.reshape(n_tasks * trials, length)
        with torch.no_grad():
            mean, log_std, _ = policy(inputs)
            old_log_prob = gaussian_log_prob(mean, log_std.expand_as(mean), actions)
        generator = torch.Generator().manual_seed(seeds.rl2_minibatches(cfg.seed, self.iteration))
        params = list(policy.parameters())
        before = [p.detach().clone() for p in params]
        optimizer_before = copy.deepcopy(self.optimizer.state_dict())
        losses, clipped = [], []
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(n_tasks * trials, generator=generator)
            for part in torch.tensor_split(order, cfg.ppo_minibatches):
                mean, log_std, _ = policy(inputs[part])
                log_prob = gaussian_log_prob(mean, log_std.expand_as(mean), actions[part])
                loss = ppo_clip_loss(
                    log_prob, old_log_prob[part], advantages[part], mask[part], cfg.ppo_clip
                )
                if cfg.entropy_coef:
                    # A diagonal Gaussian's entropy: sum(log_std) + const, state-independent.
                    loss = loss - cfg.entropy_coef * log_std.sum()
                grads = torch.autograd.grad(loss, params)
                if not (torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)):
                    with torch.no_grad():  # never an update from a non-finite gradient
                        for p, value in zip(params, before, strict=True):
                            p.copy_(value)
                    self.optimizer.load_state_dict(optimizer_before)
                    return {"update": "skipped: non-finite gradient"}
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                ratio = torch.exp(log_prob.detach() - old_log_prob[part])
                outside = ((ratio - 1.0).abs() > cfg.ppo_clip).float()
                clipped.append(float(masked_mean(outside, mask[part], (0, 1))))
        return {
            "loss": sum(losses) / len(losses),
            "clip_fraction": sum(clipped) / len(clipped),
            "update": "applied",
            "param_norm": float(torch.nn.utils.parameters_to_vector(params).detach().norm()),
        }

    # ------------------------------------------------------------------ state
    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The Adam optimizer's state."""
        return outer_optimizer_state(self.optimizer)

    def load_extra_state(self, tensors: Any, state: Any) -> None:
        load_outer_optimizer_state(self.optimizer, tensors, state)
