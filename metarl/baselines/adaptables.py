"""The baselines as :class:`~metarl.adaptation.Adaptable`: measured by the same evaluation
loop as the meta-learners (:func:`metarl.evaluate`), on episodes the same sampler draws with
the same seeds; only their adaptation step differs.

- :class:`PPOBaseline`: SB3 PPO on each task, from a fresh actor (``ppo-scratch``) or from a
  given one (``pretrained-finetune``): each adaptation step is one PPO update
  (:func:`~metarl.baselines.ppo.ppo_update`) on the episodes just sampled, as after one of
  SB3's own rollouts of that many episodes.
- :class:`OracleBaseline`: a policy that sees the task's features; it does not adapt (every
  step samples it again). Its features enter as a per-task bias of the first layer, so the
  sampler runs it as a plain policy of the family's observation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO

from metarl import seeds
from metarl.adaptation import Adaptation, Description, FixedAdaptation
from metarl.algos.base import LearnerConfig
from metarl.baselines.ppo import ppo_update, tasks_progress
from metarl.family import TaskFamily
from metarl.policies import GaussianMLPPolicy
from metarl.sampling import EpisodeBatch, Sampler
from metarl.sb3_bridge import params_from_sb3, params_to_sb3, sb3_ppo
from metarl.task import Task
from metarl.torch_threads import torch_threads


def _policy_for(
    family: TaskFamily, config: LearnerConfig, extra_inputs: int = 0
) -> GaussianMLPPolicy:
    """A policy of ``config``'s architecture for ``family`` (plus ``extra_inputs`` inputs:
    the oracle's task features): the shape of the parameters a baseline samples with (its
    own values are never used; torch's generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        return GaussianMLPPolicy.for_family(
            family, config.hidden_sizes, config.activation, config.init_std, extra_inputs
        )


class _SampledBaseline:
    """What the baselines share: a family, ``config``'s policy architecture and backend, a
    sampler (closed by :meth:`close`), and how a report names them."""

    def __init__(self, family: TaskFamily, config: LearnerConfig, description: Description):
        self.family = family
        self.config = config
        self.policy = _policy_for(family, config)
        self.sampler = Sampler(
            family,
            config.backend,
            num_workers=config.num_workers,
            seed=config.seed,
            policy=self.policy,
            address=config.address,
        )
        self._description = description

    def describe(self) -> Description:
        """The report's name, legend and details of this baseline."""
        return self._description

    def close(self) -> None:
        """Stop the sampler's workers."""
        self.sampler.close()

    def __enter__(self) -> _SampledBaseline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- PPO
def _global_rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's global generator states (SB3 draws from them)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
    }


def _set_global_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])


@contextmanager
def _global_streams(state: dict[str, Any]) -> Iterator[None]:
    """Run with the global generators set to ``state``, saving what they reach into
    ``state`` and restoring the caller's generators after: each PPO model keeps a stream of
    its own."""
    saved = _global_rng_state()
    _set_global_rng_state(state)
    try:
        yield
    finally:
        state.update(_global_rng_state())
        _set_global_rng_state(saved)


class PPOAdaptation(Adaptation):
    """One SB3 PPO model per task (seeded :func:`metarl.seeds.finetune_task` ``(seed, i)``,
    its actor ``initial_actor`` or SB3's fresh one); :meth:`step` takes one PPO update of
    each on its task's episodes."""

    def __init__(
        self,
        family: TaskFamily,
        config: LearnerConfig,
        tasks: Sequence[Task],
        seed: int,
        initial_actor: Mapping[str, torch.Tensor] | None = None,
        ppo_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        horizon = family.horizon
        kwargs = {"n_steps": horizon, "batch_size": horizon, **(ppo_kwargs or {})}
        env = family.make_env(family.default_task())  # only its spaces: PPO never steps it
        self.models: list[PPO] = []
        self._streams: list[dict[str, Any]] = []
        saved = _global_rng_state()
        try:
            for i in range(len(tasks)):
                model = sb3_ppo(
                    family,
                    config.hidden_sizes,
                    config.activation,
                    config.init_std,
                    seed=seeds.finetune_task(seed, i),  # seeds the global generators too
                    env=env,
                    **kwargs,
                )
                if initial_actor is not None:
                    params_to_sb3(model, initial_actor)
                self.models.append(model)
                self._streams.append(_global_rng_state())  # where its seeding left them
        finally:
            _set_global_rng_state(saved)
            env.close()
        self.params = self._current()

    def _current(self) -> dict[str, torch.Tensor]:
        return GaussianMLPPolicy.stack_params([params_from_sb3(model) for model in self.models])

    def step(self, batch: EpisodeBatch) -> None:
        """One PPO update per task, on its episodes of ``batch``, on one torch thread."""
        indices = range(len(self.models))
        with torch_threads(1):  # see metarl.torch_threads
            for i in tasks_progress(indices, "PPO updates") if len(self.models) > 1 else indices:
                with _global_streams(self._streams[i]):
                    ppo_update(self.models[i], batch.select(i))
        self.params = self._current()


class PPOBaseline(_SampledBaseline):
    """SB3 PPO learning each task with the adaptation budget: from scratch, or fine-tuning
    ``initial_actor`` (e.g. a policy PPO pre-trained on the distribution; the critic starts
    fresh either way). ``ppo_kwargs`` change its PPO settings (default SB3's, with one
    minibatch per episode: ``n_steps = batch_size = horizon``)."""

    def __init__(
        self,
        family: TaskFamily,
        config: LearnerConfig,
        description: Description,
        initial_actor: Mapping[str, torch.Tensor] | None = None,
        ppo_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(family, config, description)
        if initial_actor is not None:
            self.policy.check_params(dict(initial_actor))
        self.initial_actor = initial_actor
        self.ppo_kwargs = dict(ppo_kwargs or {})

    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> PPOAdaptation:
        """Fresh PPO models for ``tasks`` (seeded from ``seed``, default the config's)."""
        seed = self.config.seed if seed is None else seed
        return PPOAdaptation(
            self.family, self.config, tasks, seed, self.initial_actor, self.ppo_kwargs
        )


# ---------------------------------------------------------------------------- the oracle
def fold_task_features(
    params: Mapping[str, torch.Tensor], features: torch.Tensor, obs_dim: int
) -> dict[str, torch.Tensor]:
    """The parameters of a policy of ``[obs, features]``, as a policy of ``obs`` alone for
    fixed ``features``: the first layer's weight on the features moves into its bias
    (``W [o; f] + b = W_o o + (W_f f + b)``)."""
    weight, bias = params["mean_net.0.weight"], params["mean_net.0.bias"]
    if weight.shape[1] != obs_dim + features.numel():
        raise ValueError(
            f"the oracle's first layer takes {weight.shape[1]} inputs, not {obs_dim} "
            f"observations + {features.numel()} task features"
        )
    folded = dict(params)
    folded["mean_net.0.weight"] = weight[:, :obs_dim]
    folded["mean_net.0.bias"] = bias + weight[:, obs_dim:] @ features.to(weight.dtype)
    return folded


class OracleBaseline(_SampledBaseline):
    """The oracle: a policy of the observation with the task's features appended
    (``params``, e.g. PPO's trained on :class:`~metarl.baselines.envs.TaskEnv` with
    ``observe_task``), which needs no adaptation; every step samples it again."""

    def __init__(
        self,
        family: TaskFamily,
        config: LearnerConfig,
        description: Description,
        params: Mapping[str, torch.Tensor],
    ) -> None:
        super().__init__(family, config, description)
        oracle_policy(family, config).check_params(dict(params))
        self.params = {k: v.detach() for k, v in params.items()}

    def adaptation(self, tasks: Sequence[Task], seed: int | None = None) -> Adaptation:
        """Each task's oracle, folded into a policy of the plain observation."""
        per_task = [
            fold_task_features(
                self.params,
                torch.as_tensor(self.family.task_features(task), dtype=torch.float32),
                self.policy.obs_dim,
            )
            for task in tasks
        ]
        return FixedAdaptation(GaussianMLPPolicy.stack_params(per_task))


def oracle_policy(family: TaskFamily, config: LearnerConfig) -> GaussianMLPPolicy:
    """An untrained actor of the oracle's shape: the family's observation with its task
    features appended, ``config``'s architecture."""
    features = family.task_features(family.default_task()).size
    return _policy_for(family, config, extra_inputs=features)
