"""Learning curves of multi-task PPO (the pretrained and oracle baselines) under several
settings, to choose the baselines' settings by what they learn per env step and per second.

Each setting trains SB3 PPO (MAML's 64x64 tanh actor, ``sb3_ppo``) on a ``FamilyVecEnv``
drawing a new task every episode, for ``--timesteps`` env steps, and prints the mean return
of the episodes that ended in each stretch of ``--every`` env steps, with the wall-clock.

    python experiments/ppo_settings.py --family HalfCheetahCrippledJoint-v0 \\
        --timesteps 5000000 --settings 32x256/1024 64x256/4096 [--observe-task]

A setting is ``ENVSxSTEPS/BATCH``: envs, steps per env per rollout, minibatch size (10
epochs, SB3's other defaults).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

import metarl
from metarl.sb3_bridge import sb3_ppo


class Curve(BaseCallback):
    """Mean return of the episodes ending in each stretch of ``every`` env steps."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.next = every, every
        self.returns: list[float] = []
        self.start = time.perf_counter()
        self.rows: list[tuple[int, float, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(float(info["episode"]["r"]))
        if self.num_timesteps >= self.next:
            self.rows.append(
                (self.num_timesteps, float(np.mean(self.returns)), time.perf_counter() - self.start)
            )
            print(f"    {self.num_timesteps:>10,d} env steps: return {self.rows[-1][1]:8.1f}, "
                  f"{self.rows[-1][2]:6.0f} s", flush=True)  # fmt: skip
            self.returns, self.next = [], self.next + self.every
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="HalfCheetahCrippledJoint-v0")
    parser.add_argument("--timesteps", type=int, default=5_000_000)
    parser.add_argument("--every", type=int, default=500_000)
    parser.add_argument("--settings", nargs="+", default=["32x256/1024", "64x256/4096"])
    parser.add_argument("--observe-task", action="store_true", help="the oracle")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for setting in args.settings:
        shape, batch = setting.split("/")
        envs, steps = (int(x) for x in shape.split("x"))
        print(f"{args.family} {setting} (observe_task={args.observe_task})", flush=True)
        family = metarl.make_family(args.family)
        venv = VecMonitor(
            metarl.FamilyVecEnv(family, envs, observe_task=args.observe_task, seed=args.seed)
        )
        model = sb3_ppo(
            family, (64, 64), "tanh", 1.0, seed=args.seed, env=venv, n_steps=steps,
            batch_size=int(batch),
        )  # fmt: skip
        model.learn(args.timesteps, callback=Curve(args.every))
        venv.close()


if __name__ == "__main__":
    main()
