"""Seconds spent sampling and in the meta-update per meta-iteration.

Runs ``--iterations`` meta-iterations and prints, for each, the sampling and optimisation
seconds the learner logs. By default MAML-TRPO with the paper's settings (40 tasks x 20
episodes, twice per iteration) on ``--family``; ``--config FILE`` runs any learner's config
file instead (e.g. ``experiments/promp/halfcheetah_dir.yaml``, to set ProMP's step beside
MAML-TRPO's ``experiments/maml_table/halfcheetah_dir.yaml``). Usage::

    python benchmarks/maml_trpo_step.py [--family HalfCheetahVel-v0] [--iterations 3]
        [--fisher-fraction 1.0] [--config FILE]
"""

from __future__ import annotations

import argparse

import metarl
from metarl.algos.config import config_from_dict, read_config_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="HalfCheetahVel-v0")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--fisher-fraction", type=float, default=1.0)
    parser.add_argument("--config", help="a config file (any learner); overrides the above")
    args = parser.parse_args()
    if args.config:
        algorithm, values = read_config_file(args.config)
        cls = metarl.learner_class(algorithm)
        config = config_from_dict(cls.config_class, values, args.config)
    else:
        cls = metarl.MAMLTRPO
        config = metarl.MAMLTRPOConfig(family=args.family, fisher_fraction=args.fisher_fraction)
    print(f"{cls.display_name} on {config.family}", flush=True)
    with cls(config) as learner:
        for i in range(args.iterations):
            stats = learner.meta_step()
            print(
                f"iteration {i + 1}: sampling {stats['sampling_seconds']:.1f} s, "
                f"meta-update {stats['optimisation_seconds']:.1f} s "
                f"({stats['update']})",
                flush=True,
            )


if __name__ == "__main__":
    main()
