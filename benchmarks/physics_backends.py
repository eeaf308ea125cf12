"""Measure the ways to step many MuJoCo envs on this machine (input to the sampler's design).

Prints env steps per second (one env step = ``frame_skip`` physics substeps) for:

1. the physics limit: a bare ``mujoco.mj_step`` loop on one ``MjData``, one core, times the
   number of cores (the issue's definition), and that loop run in every core at once;
2. many envs in one process: one ``MjData`` per env stepped round-robin (what a sampler does);
3. ``mujoco.rollout`` over one model per env, and ``mujoco.batch.Batch`` (MuJoCo >= 4.0:
   each env a state row, one model, a hot ``MjData`` per thread), on 1 and on all cores'
   native threads;
4. worker processes, each stepping its share of the envs round-robin;
5. the full Gymnasium env (``family.make_env``: guard, time limit, reward terms) for scale.

Every row simulates the same thing (episodes of the family's horizon from a reset, zero
control), so the rates compare. No policy is involved: this isolates physics and its Python
overhead. Usage::

    python benchmarks/physics_backends.py [--family HalfCheetahVel-v0] [--envs 800]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import mujoco
import numpy as np
from mujoco import batch as mujoco_batch
from mujoco import rollout

import metarl


def _model(family_id: str) -> tuple[mujoco.MjModel, int]:
    family = metarl.make_family(family_id)
    env = family.make_env(family.default_task()).unwrapped
    return env.model, env.frame_skip


def run_episodes(
    family_id: str, n_envs: int, n_episodes: int, steps: int, random_control: bool = False
) -> float:
    """Seconds to run ``n_episodes`` episodes of ``steps`` env steps on each of ``n_envs``
    MjData, stepped round-robin, each episode from a reset, with zero control or (with
    ``random_control``) the controls of an untrained policy: N(0, 1), clipped to the
    actuators' range, drawn before the clock starts."""
    model, frame_skip = _model(family_id)
    datas = [mujoco.MjData(model) for _ in range(n_envs)]
    controls = np.zeros((steps, model.nu))
    if random_control:
        low, high = model.actuator_ctrlrange.T
        controls = np.clip(np.random.default_rng(0).normal(size=controls.shape), low, high)
    start = time.perf_counter()
    for _ in range(n_episodes):
        for d in datas:
            mujoco.mj_resetData(model, d)
        for control in controls:
            for d in datas:
                d.ctrl[:] = control
                mujoco.mj_step(model, d, nstep=frame_skip)
    return time.perf_counter() - start


def _worker(args: tuple[str, int, int, int], barrier, out) -> None:
    _model(args[0])  # build (and import) before the clock starts
    barrier.wait()
    out.put(run_episodes(*args))


def _in_processes(jobs: list[tuple[str, int, int, int]]) -> float:
    """Wall time for every process to finish its job (they start together at a barrier)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, barrier, out)) for job in jobs]
    for p in procs:
        p.start()
    times = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def _rollout(family_id: str, n_envs: int, threads: int, steps: int) -> float:
    """Seconds for ``mujoco.rollout`` to run one episode of every env, one env step per call
    (as a closed-loop sampler must), from a reset, with zero control."""
    model, frame_skip = _model(family_id)
    models = [model] * n_envs  # one entry per env, as with per-task models
    datas = [mujoco.MjData(model) for _ in range(threads)]
    size = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    d0 = mujoco.MjData(model)
    state0 = np.zeros(size)
    mujoco.mj_getState(model, d0, state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state = np.tile(state0, (n_envs, 1))
    control = np.zeros((n_envs, frame_skip, model.nu))
    start = time.perf_counter()
    for _ in range(steps):
        states, _ = rollout.rollout(models, datas, state, control, nstep=frame_skip)
        state = states[:, -1]
    return time.perf_counter() - start


def _batch(family_id: str, n_envs: int, threads: int, steps: int) -> float:
    """Seconds for ``mujoco.batch.Batch`` to run one episode of every env, one env step per
    call, from a reset, with zero control (what the vectorized sampler does)."""
    model, frame_skip = _model(family_id)
    batch = mujoco_batch.Batch(model, nsim=n_envs, nthread=threads)
    batch.reset()
    start = time.perf_counter()
    for _ in range(steps):
        batch.step(nstep=frame_skip)
        batch.bind("qpos").copy(), batch.bind("qvel").copy()  # what a sampler reads
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="HalfCheetahVel-v0")
    parser.add_argument("--envs", type=int, default=800, help="envs stepped together")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    family = metarl.make_family(args.family)
    n, steps, fid = args.envs, family.horizon, args.family
    total = n * steps  # env steps in every row: n episodes of the family's horizon
    split = [n // cores + (i < n % cores) for i in range(cores)]
    rows = [
        (
            "physics limit: 1 MjData, 1 core, x cores (issue's definition)",
            total * cores / run_episodes(fid, 1, n, steps),
        ),
        (
            "  the same loop in every core at once (measured)",
            total * cores / _in_processes([(fid, 1, n, steps)] * cores),
        ),
        (f"{n} MjData round-robin, 1 process", total / run_episodes(fid, n, 1, steps)),
        (
            f"{n} MjData over {cores} processes",
            total / _in_processes([(fid, k, 1, steps) for k in split]),
        ),
    ]
    for threads in sorted({1, cores}):
        rows.append(
            (
                f"mujoco.rollout, {n} models, {threads} thread(s), 1 step per call",
                total / _rollout(fid, n, threads, steps),
            )
        )
        rows.append(
            (
                f"mujoco.batch.Batch, {n} envs, {threads} thread(s), 1 step per call",
                total / _batch(fid, n, threads, steps),
            )
        )
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
    start = time.perf_counter()
    for _ in range(20 * steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rows.append(
        (
            "Gymnasium env.step (metarl make_env), 1 process",
            20 * steps / (time.perf_counter() - start),
        )
    )

    print(
        f"{fid}: frame_skip={env.unwrapped.frame_skip}, {cores} cores, "
        f"{n} episodes x {steps} steps, zero control, every episode from a reset"
    )
    limit = rows[0][1]
    for name, rate in rows:
        print(f"  {name:<70} {rate:>8.0f} steps/s  ({rate / limit:.2f}x limit)")


if __name__ == "__main__":
    main()
