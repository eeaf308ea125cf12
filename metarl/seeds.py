"""Every random stream metarl draws, named in one place.

A run, an evaluation or a baseline is a function of its seed: each stream below turns that
seed (and where it is in the run: the sampler's call, the adaptation step, the env, the
episode) into a :class:`numpy.random.SeedSequence` or an integer seed. The rest of the
package derives no seed of its own (it passes seeds on, to Gymnasium's ``reset`` or to
Stable-Baselines3), so two streams can only coincide where this page says so.

Each function keeps the exact key it had when it lived beside its user, so every committed
result, checkpoint and resume is bit-identical across the move. Some streams draw from the
same sequence (NumPy's ``SeedSequence`` ignores trailing zero words of its entropy, and a
child of ``spawn`` is the sequence with that spawn key). They feed unrelated draws, and
changing any of them would change published figures, so they are kept and listed here
(``tests/test_seeds.py`` checks that no other pair does):

- :func:`evaluation_step` ``(s, 0)`` and :func:`train_tasks` ``(s)``.
- :func:`evaluation_step` ``(s, 1)`` and :func:`task_env_draws` ``(s)``.
- :func:`evaluation_step` ``(s, 2)`` and :func:`reptile_minibatches` ``(s)`` and ``(s, 0)``:
  Reptile's minibatch order when adapting with seed ``s``, and at its first iteration.
- :func:`sampler_batch` ``(s)``'s action noise and :func:`learner_tasks` ``(s)``.
- :func:`sampler_call` ``(s, k)``'s reset seeds and :func:`vec_env_tasks` ``(s, k)``.
"""

from __future__ import annotations

import hashlib

import numpy as np


def named(stream: str) -> np.random.SeedSequence:
    """A sequence derived from a string, identical on every machine, platform and run (a
    family's fixed held-out and OOD tasks: ``"metarl/test/<family id>"``)."""
    digest = hashlib.sha256(stream.encode("utf-8")).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


def torch_seed(sequence: np.random.SeedSequence) -> int:
    """A seed for ``torch.Generator().manual_seed`` (63 bits) drawn from ``sequence``."""
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


# ---------------------------------------------------------------------------- meta-learners
def policy_init(seed: int) -> int:
    """The torch seed of a new learner's policy initialisation."""
    return seed


def learner_tasks(seed: int) -> np.random.SeedSequence:
    """The meta-learner's draws of training tasks, one meta-batch per iteration."""
    return np.random.SeedSequence(seed, spawn_key=(1,))


def reptile_minibatches(seed: int, iteration: int | None = None) -> int:
    """Reptile's inner-loop minibatch order: in meta-training at ``iteration`` of a run
    seeded ``seed``, or (``iteration=None``) in an adaptation given its own ``seed``."""
    key = (seed, 2) if iteration is None else (seed, 2, iteration)
    return torch_seed(np.random.SeedSequence(key))


def rl2_minibatches(seed: int, iteration: int) -> int:
    """RL²'s PPO minibatch order at ``iteration`` of a run seeded ``seed``."""
    return torch_seed(np.random.SeedSequence((seed, 3, iteration + 1)))


# ---------------------------------------------------------------------------- the sampler
def sampler_call(seed: int, call: int) -> np.random.SeedSequence:
    """The root of a sampler's ``call``-th batch drawn without an explicit seed."""
    return np.random.SeedSequence(seed, spawn_key=(call,))


def sampler_batch(seed: int) -> np.random.SeedSequence:
    """The root of a batch sampled with an explicit ``seed``."""
    return np.random.SeedSequence(seed)


def batch_streams(root: np.random.SeedSequence) -> tuple[np.ndarray, int]:
    """From a batch's root: the reset seed of every episode slot generator, and the torch
    seed of the action noise. ``(resets, noise)``: ``resets.generate_state(n)`` gives slot
    ``i`` its seed, whatever backend or number of workers steps it."""
    resets, noise = root.spawn(2)
    return resets, torch_seed(noise)


def action_noise(noise: int, horizon: int) -> np.ndarray:
    """The torch seed of each time step's action noise, ``[horizon]``, in a batch whose noise
    seed (from :func:`batch_streams`) is ``noise``: step ``t`` draws every episode's noise
    from ``seeds[t]``, so the noise is the same however the episodes are split between
    threads (the sampler's lanes)."""
    return np.random.SeedSequence(noise).generate_state(horizon, np.uint64) >> np.uint64(1)


# ---------------------------------------------------------------------------- evaluation
def evaluation_step(seed: int, step: int) -> int:
    """The sampling seed of adaptation step ``step`` of an evaluation seeded ``seed``."""
    return int(np.random.SeedSequence((seed, step)).generate_state(1, np.uint32)[0])


def train_tasks(seed: int) -> np.random.SeedSequence:
    """Fresh draws of the training distribution for an evaluation (``--tasks train``)."""
    return np.random.SeedSequence(seed)


def finetune_task(seed: int, task: int) -> int:
    """The seed of PPO's run on task index ``task`` (PPO from scratch, or fine-tuning)."""
    return seed + task


# ---------------------------------------------------------------------------- envs
def task_env_draws(seed: int) -> np.random.SeedSequence:
    """A :class:`~metarl.baselines.envs.TaskEnv` reset with ``seed``: its task draws."""
    return np.random.SeedSequence((seed, 1))


#: FamilyVecEnv's per-env streams, as the last key but one.
_VEC_TASKS, _VEC_RESETS = 0, 1


def vec_env_tasks(seed: int, env: int) -> np.random.SeedSequence:
    """:class:`~metarl.sampling.vec_env.FamilyVecEnv` env ``env``'s task draws."""
    return np.random.SeedSequence(seed, spawn_key=(env, _VEC_TASKS))


def vec_env_reset(seed: int, env: int, episode: int) -> int:
    """The reset seed of FamilyVecEnv env ``env``'s ``episode``-th episode."""
    sequence = np.random.SeedSequence(seed, spawn_key=(env, _VEC_RESETS, episode))
    return int(sequence.generate_state(1, np.uint32)[0])
