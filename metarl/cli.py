"""The ``metarl`` command line.

``metarl families`` lists the registered task families, one line each with their horizon and
parameter ranges; ``metarl families ID`` describes one family in full.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metarl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (KeyError, ValueError, TypeError, ImportError) as err:
        print(f"metarl: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
