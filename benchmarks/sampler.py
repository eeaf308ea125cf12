"""Sampler throughput, including policy inference, against Stable-Baselines3 and the physics limit.

For each family, in one run on this machine, prints env steps per second of:

1. ``metarl.Sampler`` sampling ``--tasks`` x ``--episodes`` episodes of the family's horizon
   (MAML's HalfCheetah setting: 40 x 20 x 200), with the default policy (64x64 tanh), new
   tasks every call as in meta-training; timed after one warm-up call;
2. Stable-Baselines3 ``PPO.collect_rollouts`` (MlpPolicy, also 64x64 tanh) over a
   ``DummyVecEnv`` of the same envs (``family.make_env``, one env per task), collecting the same
   number of env steps;
3. the physics limit: a bare ``mujoco.mj_step`` loop on one ``MjData`` (zero control, episodes
   of the horizon from a reset), on one core, times the number of cores;

and the ratios sampler / SB3 and sampler / limit. Usage::

    python benchmarks/sampler.py [--families HalfCheetahVel-v0 AntVel-v0] [--tasks 40]
        [--episodes 20] [--calls 2] [--workers N]
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


def sampler_rate(family_id: str, tasks: int, episodes: int, calls: int, workers: int | None):
    """Env steps/s of ``Sampler.sample`` (after a warm-up call that builds the envs)."""
    rng = np.random.default_rng(0)
    with metarl.Sampler(family_id, num_workers=workers, seed=0) as sampler:
        family = sampler.family
        sampler.sample(family.sample_tasks(tasks, rng), None, episodes)
        steps, seconds = 0, 0.0
        for _ in range(calls):
            batch_tasks = family.sample_tasks(tasks, rng)
            start = time.perf_counter()
            batch = sampler.sample(batch_tasks, None, episodes)
            seconds += time.perf_counter() - start
            steps += batch.num_env_steps
        return steps / seconds, sampler.num_workers


def sb3_rate(family_id: str, tasks: int, total_steps: int) -> float:
    """Env steps/s of SB3 PPO's ``collect_rollouts`` on a DummyVecEnv of one env per task."""
    family = metarl.make_family(family_id)
    task_list = family.sample_tasks(tasks, np.random.default_rng(0))
    venv = DummyVecEnv([lambda t=t: family.make_env(t) for t in task_list])
    n_steps = max(1, total_steps // tasks)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps * tasks, device="cpu")
    _, callback = model._setup_learn(total_timesteps=n_steps * tasks)
    callback.on_training_start(locals(), globals())
    start = time.perf_counter()
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
    rate = n_steps * tasks / (time.perf_counter() - start)
    venv.close()
    return rate


def physics_limit(family_id: str, cores: int, episodes: int = 20) -> float:
    """A bare ``mj_step`` loop on one MjData, one core, times ``cores`` (env steps/s)."""
    horizon = metarl.make_family(family_id).horizon
    return episodes * horizon * cores / run_episodes(family_id, 1, episodes, horizon)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["HalfCheetahVel-v0", "AntVel-v0"])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2, help="timed sampler calls")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    torch.manual_seed(0)
    cores = metarl.sampling.default_num_workers()
    print(f"{cores} cores; torch threads {torch.get_num_threads()}")
    for fid in args.families:
        rate, workers = sampler_rate(fid, args.tasks, args.episodes, args.calls, args.workers)
        horizon = metarl.make_family(fid).horizon
        sb3 = sb3_rate(fid, args.tasks, args.tasks * args.episodes * horizon)
        limit = physics_limit(fid, cores)
        print(
            f"{fid}: {args.tasks} tasks x {args.episodes} episodes x {horizon} steps, "
            f"{workers} workers"
        )
        print(f"  metarl Sampler                      {rate:>9.0f} env steps/s")
        print(f"  SB3 PPO.collect_rollouts (DummyVecEnv) {sb3:>6.0f} env steps/s")
        print(f"  physics limit (mj_step x {cores} cores)    {limit:>6.0f} env steps/s")
        print(f"  sampler / SB3 = {rate / sb3:.2f}   sampler / limit = {rate / limit:.2f}")


if __name__ == "__main__":
    main()
