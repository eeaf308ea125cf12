"""Stable-Baselines3 PPO training speed on metarl's FamilyVecEnv against SB3's own VecEnvs.

Multi-task PPO as the pre-trained baseline runs it: ``--envs`` envs of the family, each
drawing a new task from the training distribution at every episode, in three VecEnvs:

1. ``metarl.FamilyVecEnv`` (MuJoCo's batch physics on every core, NumPy observations and
   rewards for all envs at once);
2. SB3's ``DummyVecEnv`` of ``TaskEnv`` (``metarl.baselines.envs``: the family's Gymnasium
   env, a new task every reset), stepped one after the other in this process;
3. SB3's ``SubprocVecEnv`` of the same envs, one process per env (SB3's design).

Each is wrapped in ``VecMonitor`` and trained by ``PPO.learn`` for ``--timesteps`` env steps
(SB3's MlpPolicy: MAML's 64x64 tanh network), with the settings the baselines use
(``metarl.baselines.ppo.PRETRAIN_PPO_KWARGS``: 256 steps per env per rollout, minibatches of
1024) and with SB3's default minibatch of 64 instead. PyTorch runs on one thread, for all
three (on 2 cores its idle threads take CPU from the physics threads and the workers).
Printed: env steps per second of the whole ``learn`` (updates included), and of its rollout
collection alone.
Runs are interleaved, ``--repeats`` of each, and the best kept (noise only slows a run).
Usage::

    python benchmarks/sb3_vec_env.py [--family HalfCheetahCrippledJoint-v0] [--envs 64]
        [--timesteps 65536] [--repeats 3] [--settings baseline sb3-minibatch]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

import metarl
from metarl.baselines.envs import TaskEnv
from metarl.baselines.ppo import PRETRAIN_PPO_KWARGS
from metarl.sampling import default_num_workers

#: PPO settings: the baselines', and the same rollouts with SB3's default minibatch (64).
SETTINGS = {
    "sb3-minibatch": {"n_steps": PRETRAIN_PPO_KWARGS["n_steps"]},
    "baseline": PRETRAIN_PPO_KWARGS,
}


class CollectionTimer(BaseCallback):
    """Wall-clock time spent collecting rollouts (between rollout start and end)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._start = 0.0

    def _on_rollout_start(self) -> None:
        self._start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.seconds += time.perf_counter() - self._start

    def _on_step(self) -> bool:
        return True


def make_vec_env(kind: str, family_id: str, envs: int) -> VecEnv:
    family = metarl.make_family(family_id)
    if kind == "metarl FamilyVecEnv":
        return VecMonitor(metarl.FamilyVecEnv(family, envs, seed=0))
    makers: list[Callable] = [lambda i=i: TaskEnv(family, seed=i) for i in range(envs)]
    if kind == "SB3 DummyVecEnv":
        return VecMonitor(DummyVecEnv(makers))
    return VecMonitor(SubprocVecEnv(makers))


def learn_rates(kind: str, family_id: str, envs: int, timesteps: int, ppo_kwargs: dict):
    """``(learn env steps/s, collection env steps/s)`` of one ``PPO.learn`` run."""
    venv = make_vec_env(kind, family_id, envs)
    try:
        model = PPO(
            "MlpPolicy",
            venv,
            seed=0,
            device="cpu",
            **ppo_kwargs,
        )
        timer = CollectionTimer()
        start = time.perf_counter()
        model.learn(timesteps, callback=timer)
        seconds = time.perf_counter() - start
        steps = model.num_timesteps
    finally:
        venv.close()
    return steps / seconds, steps / timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="HalfCheetahCrippledJoint-v0")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; best kept")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["metarl FamilyVecEnv", "SB3 DummyVecEnv", "SB3 SubprocVecEnv"],
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    cores = default_num_workers()
    print(
        f"{args.family}: {args.envs} envs, PPO.learn of {args.timesteps} env steps, {cores} "
        f"cores; best of {args.repeats} interleaved runs of each"
    )
    for setting in args.settings:
        kwargs = dict(SETTINGS[setting])
        print(f"PPO settings: {setting} {kwargs}")
        results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in args.kinds}
        for _ in range(args.repeats):
            for kind in args.kinds:
                results[kind].append(
                    learn_rates(kind, args.family, args.envs, args.timesteps, kwargs)
                )
        best = {kind: max(r[0] for r in runs) for kind, runs in results.items()}
        for kind, runs in results.items():
            learn = ", ".join(f"{r[0]:.0f}" for r in runs)
            collect = max(r[1] for r in runs)
            print(
                f"  {kind:<22} learn {best[kind]:>7.0f} env steps/s (runs: {learn}); "
                f"collection alone {collect:>7.0f} env steps/s"
            )
        ours = best.get("metarl FamilyVecEnv")
        others = [v for k, v in best.items() if k != "metarl FamilyVecEnv"]
        if ours and others:
            print(f"  FamilyVecEnv / best of SB3's = {ours / max(others):.2f}")


if __name__ == "__main__":
    main()
