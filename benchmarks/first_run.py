"""The first thing a new user runs, timed: ``metarl train`` with no config (MAML-TRPO on
Navigation2D-v0, 30 iterations), against Stable-Baselines3 PPO learning 200k env steps of
the same family (a new task every episode, on ``metarl.FamilyVecEnv``), in the same run.

Usage (on an otherwise idle machine)::

    python benchmarks/first_run.py [--ppo-steps 200000]
"""

from __future__ import annotations

# isort: off
import metarl  # first: it sets GOMP_SPINCOUNT before torch loads OpenMP (metarl/__init__.py)

# isort: on
import argparse
import subprocess
import sys
import tempfile
import time

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor


def time_metarl_train() -> float:
    """Seconds of ``metarl train`` (the built-in default run), in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "metarl", "train", "--run-dir", f"{folder}/run"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def time_sb3_ppo(steps: int) -> float:
    """Seconds of SB3 PPO (its defaults, 8 envs) learning ``steps`` env steps."""
    env = VecMonitor(metarl.FamilyVecEnv("Navigation2D-v0", num_envs=8, seed=0))
    start = time.perf_counter()
    PPO("MlpPolicy", env, seed=0, device="cpu").learn(steps)
    seconds = time.perf_counter() - start
    env.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ppo-steps", type=int, default=200_000)
    args = parser.parse_args()
    train = time_metarl_train()
    ppo = time_sb3_ppo(args.ppo_steps)
    print(f"metarl train (default run): {train:.0f} s")
    print(f"SB3 PPO, {args.ppo_steps:,} env steps of Navigation2D-v0: {ppo:.0f} s")
    print(f"ratio: {train / ppo:.2f}")


if __name__ == "__main__":
    main()
