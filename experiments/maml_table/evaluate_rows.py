"""Evaluate every committed checkpoint the MAML table quotes, with the current code.

For each row directory of ``experiments/results/maml_table/`` (``ROW_seedS/run/`` holds its
checkpoints), runs ``metarl evaluate`` on 40 held-out tasks, 20 episodes per step (the
paper's protocol):

- the final checkpoint (and, for 2D navigation, the one at the paper's 100 iterations) with
  k = 0..3 at the training step size: ``eval/iterNNN_k3.json``;
- the same with the MAML authors' evaluation step sizes (the first step at the training
  step size, the later ones at half of it): ``eval/iterNNN_k3_lrA-B.json``;
- earlier checkpoints with k = 0, 1: ``eval/over_training/iterNNN.json``;
- with ``--eval-seeds S ...``, the final checkpoint with k = 0, 1 again under each other
  evaluation seed (other episodes of the same 40 tasks): ``eval/seeds/iterNNN_seedS.json``,
  to measure how much k = 1 moves with the episodes an evaluation draws.

A report that exists is kept (``--force`` evaluates it again). Usage::

    python experiments/maml_table/evaluate_rows.py [--rows halfcheetah_dir_seed0 ...] [--force]
        [--eval-seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from metarl.cli import main as metarl_main

RESULTS = Path(__file__).resolve().parents[1] / "results" / "maml_table"

#: The authors' evaluation step sizes per family kind (test_maml_point.py, test_maml_cheetah.py,
#: test_maml_ant.py): the training step size, then half of it.
NAVIGATION_V1_STEPS = ("0.5", "0.25")
LOCOMOTION_STEPS = ("0.1", "0.05")

#: row directory: (final checkpoints evaluated with k = 0..3, step sizes for the authors'
#: schedule or None, checkpoints evaluated over training with k = 0, 1)
ROWS: dict[str, tuple[tuple[int, ...], tuple[str, str] | None, tuple[int, ...]]] = {
    "navigation2d_v1_seed0": ((100, 200), NAVIGATION_V1_STEPS, ()),
    "navigation2d_v1_seed1": ((100, 200), NAVIGATION_V1_STEPS, ()),
    "navigation2d_seed0": ((100, 500), None, (50, 150, 200, 250, 300, 400)),
    "navigation2d_seed1": ((100, 500), None, (50, 150, 200, 250, 300, 400)),
    "halfcheetah_vel_seed0": ((500,), LOCOMOTION_STEPS, (100, 200, 300, 400)),
    "halfcheetah_vel_seed1": ((500,), LOCOMOTION_STEPS, (100, 200, 300, 400)),
    "halfcheetah_vel_relu100_seed0": ((500,), LOCOMOTION_STEPS, (100, 200, 300, 400)),
    "halfcheetah_vel_relu100_seed1": ((500,), LOCOMOTION_STEPS, ()),
    "halfcheetah_dir_seed0": (
        (500,),
        LOCOMOTION_STEPS,
        (50, 70, 80, 90, 100, 110, 120, 150, 200, 250, 300, 400),
    ),
    "halfcheetah_dir_seed1": ((500,), LOCOMOTION_STEPS, ()),
    "halfcheetah_dir_full_fisher_seed0": ((), None, (50, 100, 150)),
    "halfcheetah_dir_v0_seed0": ((500,), None, (100, 150, 200, 250, 300, 350, 400, 450)),
    "ant_vel_seed0": ((100,), LOCOMOTION_STEPS, ()),
    "ant_dir_seed0": ((100,), LOCOMOTION_STEPS, ()),
}


def evaluate(
    checkpoint: Path, out: Path, steps: int, step_sizes, force: bool, seed: int = 0
) -> None:
    """``metarl evaluate CHECKPOINT --steps STEPS [--step-sizes ...] --seed SEED --out
    OUT``, unless OUT exists (and not ``force``)."""
    if out.exists() and not force:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["evaluate", str(checkpoint), "--steps", str(steps), "--out", str(out)]
    args += ["--seed", str(seed)]
    if step_sizes:
        args += ["--step-sizes", *step_sizes]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = metarl_main(args)
    if code != 0:
        raise SystemExit(f"metarl {' '.join(args)} failed:\n{printed.getvalue()}")
    print(f"{out.relative_to(RESULTS)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--force", action="store_true", help="evaluate existing reports again")
    parser.add_argument(
        "--eval-seeds", nargs="*", type=int, default=[], help="more evaluation seeds (k <= 1)"
    )
    args = parser.parse_args()
    for row in args.rows:
        finals, step_sizes, over_training = ROWS[row]
        directory = RESULTS / row
        for iteration in finals:
            checkpoint = directory / "run" / "checkpoints" / f"iter_{iteration:06d}.safetensors"
            out = directory / "eval" / f"iter{iteration:03d}_k3.json"
            evaluate(checkpoint, out, 3, None, args.force)
            if step_sizes:
                name = f"iter{iteration:03d}_k3_lr{'-'.join(step_sizes)}.json"
                evaluate(checkpoint, directory / "eval" / name, 3, step_sizes, args.force)
            if iteration == finals[-1]:
                for seed in args.eval_seeds:
                    out = directory / "eval" / "seeds" / f"iter{iteration:03d}_seed{seed}.json"
                    evaluate(checkpoint, out, 1, None, args.force, seed)
        for iteration in over_training:
            checkpoint = directory / "run" / "checkpoints" / f"iter_{iteration:06d}.safetensors"
            out = directory / "eval" / "over_training" / f"iter{iteration:03d}.json"
            evaluate(checkpoint, out, 1, None, args.force)


if __name__ == "__main__":
    main()
