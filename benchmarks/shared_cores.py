"""How much slower training gets when another CPU-bound process shares the cores.

On a machine with ``C`` cores, one more busy process should cost a training roughly the share
it takes (2 cores, one other process: up to ~1.5x-2x), not a multiple. This measures, idle
and beside ``--busy`` busy-looping processes, for each torch intra-op thread count:

- the MAML-TRPO optimisation step of the built-in ``metarl train`` run (Navigation2D-v0,
  20 tasks x 20 episodes), as the learner logs it (``optimisation_seconds``);
- the PPO baselines' update (one SB3 PPO update of 4 HalfCheetahVel-v0 tasks on 20
  episodes each), the step ``metarl baseline ppo-scratch`` takes per task and step.

Usage (on an otherwise idle machine: nothing else may use the cores)::

    python benchmarks/shared_cores.py [--iterations 3] [--busy 1] [--threads 1 2] [--work maml ppo]
"""

from __future__ import annotations

# isort: off
import metarl  # first: it sets GOMP_SPINCOUNT before torch loads OpenMP (metarl/__init__.py)

# isort: on
import argparse
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable

import torch

from metarl.adaptation import Description
from metarl.baselines import compared_learner
from metarl.baselines.adaptables import PPOBaseline
from metarl.baselines.ppo import ppo_update
from metarl.policies import GaussianMLPPolicy


def _busy_loop() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


def maml_trpo_step(iterations: int) -> float:
    """Median optimisation seconds per iteration of the default MAML-TRPO run."""
    config = metarl.MAMLTRPOConfig(
        family="Navigation2D-v0", meta_batch_size=20, fast_batch_size=20, num_workers=0
    )
    with metarl.MAMLTRPO(config) as learner:
        seconds = [learner.meta_step()["optimisation_seconds"] for _ in range(iterations)]
    return statistics.median(seconds)


def ppo_baseline_update(iterations: int) -> float:
    """Median seconds of one PPO update of 4 HalfCheetahVel tasks (20 episodes each)."""
    family = metarl.make_family("HalfCheetahVel-v0")
    config = compared_learner(family=family.id).config
    tasks = family.test_tasks(4)
    with PPOBaseline(family, config, Description("ppo", "ppo")) as baseline:
        adaptation = baseline.adaptation(tasks, seed=0)
        params = GaussianMLPPolicy.unstack_params(adaptation.params)
        batch = baseline.sampler.sample(tasks, params, 20, seed=1)
        seconds = []
        for _ in range(iterations):
            start = time.perf_counter()
            for i, model in enumerate(adaptation.models):  # as PPOAdaptation.step, unscoped
                ppo_update(model, batch.select(i))
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure(work: Callable[[int], float], iterations: int, threads: int, busy: int) -> float:
    torch.set_num_threads(threads)
    others = [mp.get_context("spawn").Process(target=_busy_loop, daemon=True) for _ in range(busy)]
    for process in others:
        process.start()
    try:
        return work(iterations)
    finally:
        for process in others:
            process.kill()
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside training")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", nargs="+", default=["maml", "ppo"], choices=["maml", "ppo"])
    args = parser.parse_args()
    spin = os.environ.get("GOMP_SPINCOUNT")
    print(f"{mp.cpu_count()} cores; busy processes: {args.busy}; GOMP_SPINCOUNT={spin}")
    works = {"maml": ("MAML-TRPO step", maml_trpo_step), "ppo": ("PPO update", ppo_baseline_update)}
    for name, work in (works[key] for key in args.work):
        for threads in args.threads:
            idle = measure(work, args.iterations, threads, 0)
            shared = measure(work, args.iterations, threads, args.busy)
            print(
                f"{name}, {threads} torch thread(s): idle {idle:.2f} s, shared "
                f"{shared:.2f} s ({shared / idle:.1f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
