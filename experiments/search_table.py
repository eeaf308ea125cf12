"""Print the Reptile search (experiments/reptile_search.sh) as a Markdown table, one row per
variant: what it changes in the base variant's config, its training budget, Reptile's
held-out return before and after the last step, the gain of those steps (paired per task,
95% CI), and how much more Reptile's steps gained than the same inner loop from a random
initialisation and from PPO's pretrained policy (paired per task: Reptile's gain minus
theirs, 95% CI). Reptile meta-learns where both are clear of zero.

    python experiments/search_table.py experiments/results/reptile_search/halfcheetah_dir \
        [--base-config experiments/halfcheetah_dir_reptile.yaml]

The "changes" are against the base variant's report (OUT/base.json), or, before it exists,
against the config file given as ``--base-config`` (the variants' config).

A variant's reports are OUT/<variant>.json, OUT/random_init_<variant>.json and
OUT/pretrained_<variant>.json; a missing comparison shows as "-".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from report_table import training_budget

from metarl.algos import learner_class
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file
from metarl.evaluation import AdaptationReport


def config_file_settings(path: Path) -> dict:
    """Every setting of the learner a config file describes (its defaults filled in), as a
    report's ``info["config"]`` records them."""
    algorithm, values = read_config_file(path)
    return config_to_dict(config_from_dict(learner_class(algorithm).config_class, values))


def interval(value: float, bounds: tuple[float, float]) -> str:
    return f"{value:+.1f} [{bounds[0]:+.1f}, {bounds[1]:+.1f}]"


def changes(config: dict, base: dict) -> str:
    """The settings in which ``config`` differs from ``base`` (the base variant's)."""
    keys = sorted(k for k in config.keys() | base.keys() if config.get(k) != base.get(k))
    return ", ".join(f"{k} = {config.get(k)}" for k in keys) or "(the base config)"


def row(out: Path, variant: str, base: dict) -> str:
    """The table row of one variant (its reports in ``out``)."""
    reptile = AdaptationReport.load(out / f"{variant}.json")
    last = reptile.steps[-1]
    cells = [
        variant,
        changes(reptile.info.get("config", {}), base),
        training_budget(reptile),
        f"{reptile.mean_return[0]:.1f}",
        f"{reptile.mean_return[-1]:.1f}",
        interval(*reptile.gain(last)),
    ]
    for prefix in ("random_init", "pretrained"):
        path = out / f"{prefix}_{variant}.json"
        if not path.exists():
            cells += ["-", "-"]
            continue
        other = AdaptationReport.load(path)
        cells += [interval(*other.gain(last)), interval(*reptile.paired_difference(other, last, 0))]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the search's output directory")
    parser.add_argument(
        "--base-config",
        type=Path,
        help="the variants' config file, to name their changes before OUT/base.json exists",
    )
    args = parser.parse_args()
    variants = sorted(
        path.stem
        for path in args.out.glob("*.json")
        if not path.stem.startswith(("random_init_", "pretrained"))
    )
    if not variants:
        parser.error(f"{args.out} holds no variant's report (<variant>.json)")
    first = AdaptationReport.load(args.out / f"{variants[0]}.json")
    base_path = args.out / "base.json"
    if base_path.exists():
        base = AdaptationReport.load(base_path).info.get("config", {})
    elif args.base_config is not None:
        base = config_file_settings(args.base_config)
    else:
        base = {}
    k = first.steps[-1]
    print(
        f"| variant | changes | training env steps | step 0 | step {k} | gain at step {k} | "
        f"random init's gain | gain minus random init's | pretrained's gain | "
        f"gain minus pretrained's |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant in variants:
        print(row(args.out, variant, base))
    print(
        f"\n{first.family}, {first.num_tasks} tasks ({first.info.get('task_set', '?')}), "
        f"{first.episodes} episodes per step, seed {first.seed}; paired 95% CIs over tasks"
    )


if __name__ == "__main__":
    main()
