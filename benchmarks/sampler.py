"""Sampler throughput, including policy inference, against Stable-Baselines3 and the physics limit.

For each family, in one run on this machine, measures env steps per second of:

1. ``metarl.Sampler`` sampling ``--tasks`` x ``--episodes`` episodes of the family's horizon
   (MAML's HalfCheetah setting: 40 x 20 x 200), with the default policy (64x64 tanh), new
   tasks every call as in meta-training; timed after one warm-up call that builds the envs.
   Its default, vectorized stepping (see ``metarl.mujoco.vector_step``) is what the ratios
   use;
2. Stable-Baselines3 ``PPO.collect_rollouts`` (MlpPolicy, also 64x64 tanh) over a
   ``DummyVecEnv`` of the same envs (``family.make_env``, one env per task), collecting one
   horizon of steps from every env per run;
3. the physics limit: a bare ``mujoco.mj_step`` loop on one ``MjData`` (episodes of the
   horizon from a reset, driven by N(0, 1) controls clipped to the actuator range, as from an
   untrained policy), on one core, times the number of cores;
4. the physics alone as the sampler runs it, for scale: MuJoCo's ``Batch`` stepping as many
   envs on every core (or, for a family whose step needs each env's ``MjData``, as Ant's
   contact forces do, threads over one ``MjData`` per env), the same controls, no policy;

and the ratios sampler / SB3 and sampler / limit. The machine is shared and its speed drifts
by tens of percent within minutes, so the measurements are taken in ``--rounds`` rounds, each
measuring every one of them back to back; a ratio is reported as the median over rounds of
the ratio within a round (so a slow minute slows both sides), beside the best of each.
Stepping through each env's Gymnasium ``step`` in worker processes is measured with
``--processes``. Usage::

    python benchmarks/sampler.py [--families HalfCheetahVel-v0 AntVel-v0 HalfCheetahVel-v1]
        [--tasks 40] [--episodes 20] [--rounds 5] [--workers N] [--processes]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch
from mujoco import batch as mujoco_batch
from physics_backends import run_episodes
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import metarl
from metarl.array_step import vector_step_of
from metarl.sampling import default_num_workers

Measure = Callable[[], float]


def sampler_measure(
    family_id: str, tasks: int, episodes: int, workers: int | None, vectorized: bool | None
) -> tuple[Measure, metarl.Sampler]:
    """A function timing one ``Sampler.sample`` call on new tasks (env steps/s), after a
    warm-up call that builds the envs; and the sampler, to close."""
    rng = np.random.default_rng(0)
    sampler = metarl.Sampler(family_id, num_workers=workers, seed=0, vectorized=vectorized)
    family = sampler.family
    sampler.sample(family.sample_tasks(tasks, rng), None, episodes)

    def measure() -> float:
        batch_tasks = family.sample_tasks(tasks, rng)
        start = time.perf_counter()
        batch = sampler.sample(batch_tasks, None, episodes)
        return batch.num_env_steps / (time.perf_counter() - start)

    return measure, sampler


def sb3_measure(family_id: str, tasks: int) -> tuple[Measure, DummyVecEnv]:
    """A function timing one SB3 PPO ``collect_rollouts`` on a DummyVecEnv of one env per
    task, one horizon of steps from every env (env steps/s); and the VecEnv, to close."""
    family = metarl.make_family(family_id)
    task_list = family.sample_tasks(tasks, np.random.default_rng(0))
    venv = DummyVecEnv([lambda t=t: family.make_env(t) for t in task_list])
    n_steps = family.horizon
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps * tasks, device="cpu")
    _, callback = model._setup_learn(total_timesteps=n_steps * tasks * 10_000)
    callback.on_training_start(locals(), globals())

    def measure() -> float:
        start = time.perf_counter()
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
        return n_steps * tasks / (time.perf_counter() - start)

    return measure, venv


def limit_measure(family_id: str, cores: int, episodes: int) -> Measure:
    """A function timing the physics limit: a bare ``mj_step`` loop on one MjData, one core,
    ``episodes`` episodes of the horizon, times ``cores`` (env steps/s)."""
    horizon = metarl.make_family(family_id).horizon

    def measure() -> float:
        return episodes * horizon * cores / run_episodes(family_id, 1, episodes, horizon, True)

    return measure


def physics_measure(family_id: str, n_envs: int, threads: int) -> Measure:
    """A function timing the sampler's physics alone: ``n_envs`` envs stepped for one horizon
    from a reset with N(0, 1) controls clipped to the actuators' range, on ``threads``
    threads, through MuJoCo's ``Batch`` or (a step that needs each env's ``MjData``) threads
    over one ``MjData`` per env, reading what the sampler reads after each step."""
    family = metarl.make_family(family_id)
    env = family.make_env(family.default_task()).unwrapped
    model, frame_skip, horizon = env.model, env.frame_skip, family.horizon
    step = vector_step_of(env)
    low, high = model.actuator_ctrlrange.T
    rng = np.random.default_rng(0)
    controls = np.clip(rng.normal(size=(horizon, n_envs, model.nu)), low, high)
    if not step.post_constraint:
        batch = mujoco_batch.Batch(model, nsim=n_envs, nthread=threads)
        fields = [batch.bind(name) for name in ("qpos", "qvel", *step.fields)]

        def measure() -> float:
            batch.reset()
            start = time.perf_counter()
            for control in controls:
                batch.ctrl[:] = control
                batch.step(nstep=frame_skip)
                [field.copy() for field in fields]
            return n_envs * horizon / (time.perf_counter() - start)

        return measure
    datas = [mujoco.MjData(model) for _ in range(n_envs)]
    pool = ThreadPoolExecutor(threads)
    shares = np.array_split(np.arange(n_envs), threads)

    def run(share: np.ndarray, t: int) -> None:
        for k in share:
            data = datas[k]
            data.ctrl[:] = controls[t, k]
            mujoco.mj_step(model, data, nstep=frame_skip)
            mujoco.mj_rnePostConstraint(model, data)
            [getattr(data, name).copy() for name in step.fields]

    def measure_threads() -> float:
        for data in datas:
            mujoco.mj_resetData(model, data)
        start = time.perf_counter()
        for t in range(horizon):
            list(pool.map(run, shares, [t] * len(shares)))
        return n_envs * horizon / (time.perf_counter() - start)

    return measure_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--families", nargs="+", default=["HalfCheetahVel-v0", "AntVel-v0", "HalfCheetahVel-v1"]
    )
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    parser.add_argument(
        "--processes", action="store_true", help="also step in worker processes (slow)"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    cores = default_num_workers()
    print(f"{cores} cores; {args.rounds} rounds, each measuring every row back to back")
    for fid in args.families:
        sampler, sampler_obj = sampler_measure(fid, args.tasks, args.episodes, args.workers, None)
        sb3, venv = sb3_measure(fid, args.tasks)
        closers = [sampler_obj.close, venv.close]
        measures = {
            "metarl Sampler (vectorized, default)": sampler,
            "SB3 PPO.collect_rollouts (DummyVecEnv)": sb3,
            f"physics limit (mj_step x {cores} cores)": limit_measure(fid, cores, 100),
            f"physics alone, as the sampler steps it ({cores} threads)": physics_measure(
                fid, args.tasks * args.episodes, cores
            ),
        }
        if args.processes:
            processes, obj = sampler_measure(fid, args.tasks, args.episodes, args.workers, False)
            measures["metarl Sampler (worker processes)"] = processes
            closers.append(obj.close)
        runs: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.rounds):
            for name, measure in measures.items():
                runs[name].append(measure())
        for close in closers:
            close()
        horizon = metarl.make_family(fid).horizon
        print(
            f"{fid}: {args.tasks} tasks x {args.episodes} episodes x {horizon} steps, "
            f"{sampler_obj.num_workers} workers"
        )
        for name, values in runs.items():
            shown = ", ".join(f"{v:.0f}" for v in values)
            print(f"  {name:<58} best {max(values):>8.0f} env steps/s   (rounds: {shown})")
        names = list(runs)
        ours, theirs, limit, physics = (runs[name] for name in names[:4])
        for label, other in (("SB3", theirs), ("limit", limit), ("physics alone", physics)):
            per_round = [a / b for a, b in zip(ours, other, strict=True)]
            print(
                f"  sampler / {label:<14} median per round {statistics.median(per_round):.2f}"
                f"  (range {min(per_round):.2f}-{max(per_round):.2f}; of the bests "
                f"{max(ours) / max(other):.2f})"
            )


if __name__ == "__main__":
    main()
