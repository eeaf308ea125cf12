"""Seconds spent sampling and in the TRPO meta-step per MAML-TRPO iteration.

Runs ``--iterations`` meta-iterations of MAML-TRPO with the paper's settings (40 tasks x 20
episodes, twice per iteration) on ``--family`` and prints, for each, the sampling and
optimisation seconds the learner logs. Usage::

    python benchmarks/maml_trpo_step.py [--family HalfCheetahVel-v0] [--iterations 3]
        [--fisher-fraction 1.0]
"""

from __future__ import annotations

import argparse

import metarl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="HalfCheetahVel-v0")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--fisher-fraction", type=float, default=1.0)
    args = parser.parse_args()
    config = metarl.MAMLTRPOConfig(family=args.family, fisher_fraction=args.fisher_fraction)
    with metarl.MAMLTRPO(config) as learner:
        for i in range(args.iterations):
            stats = learner.meta_step()
            print(
                f"iteration {i + 1}: sampling {stats['sampling_seconds']:.1f} s, "
                f"TRPO step {stats['optimisation_seconds']:.1f} s "
                f"({stats['update']})",
                flush=True,
            )


if __name__ == "__main__":
    main()
