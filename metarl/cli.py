"""The ``metarl`` command line.

``metarl families`` lists the registered task families, one line each with their horizon and
parameter ranges; ``metarl families ID`` describes one family in full.

``metarl train [CONFIG] [--run-dir DIR] [--seed N] [--iterations N] [--resume]`` meta-trains
(with no CONFIG: MAML-TRPO on Navigation2D-v0, a few minutes on 2 cores) and prints the return
before and after adaptation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import metarl


def _family_line(family_id: str, width: int) -> str:
    return f"{family_id:<{width}}  {metarl.make_family(family_id).describe()}"


def _family_details(family_id: str) -> str:
    family = metarl.make_family(family_id)
    spec = metarl.family_spec(family_id)
    lines = [
        family_id,
        f"  {family.description}",
        f"  horizon: {family.horizon}",
        f"  registered by: {spec.source}",
        "  parameters:",
    ]
    for p in family.parameters:
        lines.append(f"    {p.name}: {p.description}")
        lines.append(f"      allowed: {p.allowed()}; default: {p.default!r}")
    ood = "ood_tasks(n)" if family.has_ood else "none"
    lines.append(f"  held-out sets: test_tasks(n), out-of-distribution: {ood}")
    lines.append(f'  gymnasium: gymnasium.make("metarl/{family_id}", **task.to_dict())')
    return "\n".join(lines)


def _cmd_families(args: argparse.Namespace) -> int:
    if args.id:
        print(_family_details(args.id))
        return 0
    ids = metarl.family_ids()
    width = max(len(i) for i in ids)
    for family_id in ids:
        print(_family_line(family_id, width))
    return 0


def _returns_line(stats: dict) -> str:
    """``mean return before adaptation X, after 1 step Y, ...`` from a meta-iteration's log
    (``return_after`` comes after the last ``return_after_step_<k>``)."""
    after = []
    while f"return_after_step_{len(after) + 1}" in stats:
        after.append(stats[f"return_after_step_{len(after) + 1}"])
    if "return_after" in stats:
        after.append(stats["return_after"])
    parts = [f"mean return before adaptation {stats['return_before']:.2f}"]
    parts += [f"after {k} step{'s' if k > 1 else ''} {r:.2f}" for k, r in enumerate(after, 1)]
    return ", ".join(parts)


def _cmd_train(args: argparse.Namespace) -> int:
    from metarl.algos.runs import start_run

    learner = start_run(args.config, args.run_dir, args.seed, args.resume)
    try:
        target = args.iterations if args.iterations is not None else learner.config.iterations
        remaining = target - learner.iteration
        print(
            f"{learner.algorithm} on {learner.config.family}: iterations {learner.iteration} -> "
            f"{max(target, learner.iteration)}, run directory {learner.run_dir}"
        )
        learner.train(max(remaining, 0))
        stats = learner.last_stats
        if stats:
            print(f"iteration {learner.iteration}: {_returns_line(stats)}")
    finally:
        learner.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metarl", description="Meta-reinforcement learning for robot control."
    )
    parser.add_argument("--version", action="version", version=f"metarl {metarl.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    families = commands.add_parser(
        "families",
        help="list the registered task families",
        description="List the registered task families with their horizon and parameters.",
    )
    families.add_argument("id", nargs="?", help="describe this family in full")
    families.set_defaults(func=_cmd_families)
    train = commands.add_parser(
        "train",
        help="meta-train a policy (default: MAML-TRPO on Navigation2D-v0)",
        description="Meta-train a policy initialisation from a YAML config (see experiments/); "
        "with no config, MAML-TRPO on Navigation2D-v0 for 30 iterations.",
    )
    train.add_argument("config", nargs="?", help="YAML config file (algorithm, family, fields)")
    train.add_argument("--run-dir", help="where logs and checkpoints go (default: runs/...)")
    train.add_argument("--seed", type=int, help="override the config's seed")
    train.add_argument("--iterations", type=int, help="train until this many iterations in total")
    train.add_argument(
        "--resume", action="store_true", help="continue the run directory's latest checkpoint"
    )
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metarl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (KeyError, ValueError, TypeError, ImportError, FileNotFoundError) as err:
        print(f"metarl: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
