"""Sampler throughput, including policy inference, against Stable-Baselines3 and the physics limit.

For each family, in one run on this machine, prints env steps per second of:

1. ``metarl.Sampler`` sampling ``--tasks`` x ``--episodes`` episodes of the family's horizon
   (MAML's HalfCheetah setting: 40 x 20 x 200), with the default policy (64x64 tanh), new
   tasks every call as in meta-training; timed after one warm-up call that builds the envs.
   Its default, vectorized stepping (see ``metarl.mujoco.vector_step``) is what the ratios
   use; stepping each env's Gymnasium ``step`` in worker processes (``vectorized=False``) is
   shown beside it;
2. Stable-Baselines3 ``PPO.collect_rollouts`` (MlpPolicy, also 64x64 tanh) over a
   ``DummyVecEnv`` of the same envs (``family.make_env``, one env per task), collecting one
   horizon of steps from every env per run;
3. the physics limit: a bare ``mujoco.mj_step`` loop on one ``MjData`` (episodes of the
   horizon from a reset, driven by N(0, 1) controls clipped to the actuator range, as from an
   untrained policy), on one core, times the number of cores;

and the ratios sampler / SB3 and sampler / limit. Each is run ``--repeats`` times and the best
run is kept (the usual defence against a noisy machine: noise only ever slows a run down).
Usage::

    python benchmarks/sampler.py [--families HalfCheetahVel-v0 AntVel-v0] [--tasks 40]
        [--episodes 20] [--repeats 3] [--workers N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from physics_backends import run_episodes
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import metarl
from metarl.sampling import default_num_workers


def sampler_rates(
    family_id: str,
    tasks: int,
    episodes: int,
    repeats: int,
    workers: int | None,
    vectorized: bool | None = None,
):
    """Env steps/s of each of ``repeats`` ``Sampler.sample`` calls, each on new tasks (after a
    warm-up call that builds the envs), and the number of workers used."""
    rng = np.random.default_rng(0)
    with metarl.Sampler(family_id, num_workers=workers, seed=0, vectorized=vectorized) as sampler:
        family = sampler.family
        sampler.sample(family.sample_tasks(tasks, rng), None, episodes)
        rates = []
        for _ in range(repeats):
            batch_tasks = family.sample_tasks(tasks, rng)
            start = time.perf_counter()
            batch = sampler.sample(batch_tasks, None, episodes)
            rates.append(batch.num_env_steps / (time.perf_counter() - start))
        return rates, sampler.num_workers


def sb3_rates(family_id: str, tasks: int, repeats: int) -> list[float]:
    """Env steps/s of SB3 PPO's ``collect_rollouts`` on a DummyVecEnv of one env per task,
    each repeat collecting one horizon of steps from every env."""
    family = metarl.make_family(family_id)
    task_list = family.sample_tasks(tasks, np.random.default_rng(0))
    venv = DummyVecEnv([lambda t=t: family.make_env(t) for t in task_list])
    n_steps = family.horizon
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps * tasks, device="cpu")
    _, callback = model._setup_learn(total_timesteps=n_steps * tasks * repeats)
    callback.on_training_start(locals(), globals())
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
        rates.append(n_steps * tasks / (time.perf_counter() - start))
    venv.close()
    return rates


def physics_limits(family_id: str, cores: int, repeats: int, episodes: int = 20) -> list[float]:
    """A bare ``mj_step`` loop on one MjData, one core, times ``cores`` (env steps/s), driven
    by the controls of an untrained policy (as the sampler's and SB3's envs are)."""
    horizon = metarl.make_family(family_id).horizon
    return [
        episodes * horizon * cores / run_episodes(family_id, 1, episodes, horizon, True)
        for _ in range(repeats)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["HalfCheetahVel-v0", "AntVel-v0"])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; best kept")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    torch.manual_seed(0)
    cores = default_num_workers()
    print(f"{cores} cores; best of {args.repeats} runs of each (the machine is shared and noisy)")
    for fid in args.families:
        rates, workers = sampler_rates(fid, args.tasks, args.episodes, args.repeats, args.workers)
        processes, _ = sampler_rates(
            fid, args.tasks, args.episodes, args.repeats, args.workers, vectorized=False
        )
        sb3 = sb3_rates(fid, args.tasks, args.repeats)
        limits = physics_limits(fid, cores, args.repeats)
        rate, sb3_best, limit = max(rates), max(sb3), max(limits)
        horizon = metarl.make_family(fid).horizon
        print(
            f"{fid}: {args.tasks} tasks x {args.episodes} episodes x {horizon} steps, "
            f"{workers} workers (threads when vectorized, else processes)"
        )
        for name, values in (
            ("metarl Sampler (vectorized, default)", rates),
            ("metarl Sampler (worker processes)", processes),
            ("SB3 PPO.collect_rollouts (DummyVecEnv)", sb3),
            (f"physics limit (mj_step x {cores} cores)", limits),
        ):
            runs = ", ".join(f"{v:.0f}" for v in values)
            print(f"  {name:<40} {max(values):>8.0f} env steps/s   (runs: {runs})")
        print(f"  sampler / SB3 = {rate / sb3_best:.2f}   sampler / limit = {rate / limit:.2f}")


if __name__ == "__main__":
    main()
