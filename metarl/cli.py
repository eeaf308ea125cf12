"""The ``metarl`` command line.

``metarl families`` lists the registered task families, one line each with their horizon and
parameter ranges; ``metarl families ID`` describes one family in full. ``metarl algorithms``
lists the registered meta-learners (bundled, and those of installed packages).

``metarl train [CONFIG] [--run-dir DIR] [--seed N] [--iterations N] [--resume]`` meta-trains
(with no CONFIG: MAML-TRPO on Navigation2D-v0, about 30 s on 2 cores) and prints the return
before and after adaptation; ``--eval-every N`` adds a held-out evaluation every N iterations.

``metarl evaluate RUN_DIR_OR_CHECKPOINT [--tasks test|ood|train|FILE.json] ...`` measures the
return after 0..K adaptation steps on held-out tasks and writes a report (JSON or CSV);
``--video DIR`` films a few tasks before and after adaptation. ``metarl plot REPORT ... -o
curves.png`` draws reports as adaptation curves.

``metarl baseline NAME (--family ID | --like RUN | --config FILE) ...`` measures a baseline
(random-init, pretrained, pretrained-finetune, ppo-scratch, oracle) with the same protocol,
into the same report format. ``metarl export RUN_DIR --format sb3 -o model.zip [--task
JSON]`` writes the meta-learned (or adapted) policy as a Stable-Baselines3 PPO model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import metarl
from metarl import runs
from metarl.algos.base import TrainingInterrupted
from metarl.baselines import (
    BASELINES,
    DEFAULT_TIMESTEPS,
    POLICY_BASELINES,
    check_baseline_applies,
    compared_learner,
    evaluate_baseline_checkpoint,
    is_baseline_checkpoint,
    run_baseline,
    run_env_steps,
)
from metarl.policies import GaussianMLPPolicy
from metarl.sampling.workers import WorkerError


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


def _cmd_algorithms(args: argparse.Namespace) -> int:
    from metarl.algos.registry import algorithm_spec

    rows = []
    for name in metarl.algorithm_names():
        cls = metarl.learner_class(name)
        source = algorithm_spec(name).source
        rows.append((name, cls.display_name, f"{cls.__module__}:{cls.__qualname__}", source))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3])
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


def _positive_int(text: str) -> int:
    """An int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    """``--seed``: an int in [0, 2**63) (torch's and NumPy's seeds are 64-bit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an int in [0, 2**63), got {text}")
    return value


def _overrides(pairs: Sequence[str] | None) -> dict[str, object]:
    """``--set KEY=VALUE`` options as a dict, each value read as YAML (``0.01``, ``true``,
    ``[64, 64]``, ``null``)."""
    from metarl.algos.config import load_yaml
    from metarl.excerpt import shown

    out: dict[str, object] = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes KEY=VALUE (e.g. --set inner_lr=0.01), got {shown(pair)}")
        out[key.strip()] = load_yaml(text, f"--set {shown(pair)}") if text.strip() else None
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    callback = None
    options = {
        "tasks": args.eval_tasks,
        "steps": args.eval_steps,
        "episodes": args.eval_episodes,
        "num_tasks": args.eval_num_tasks,
    }
    given = {name: value for name, value in options.items() if value is not None}
    if args.eval_every is not None:
        from metarl.evaluation.callbacks import EvaluationCallback

        callback = EvaluationCallback(args.eval_every, verbose=True, **given)
    elif given:
        names = ", ".join(f"--eval-{name.replace('_', '-')}" for name in given)
        raise ValueError(f"{names} take effect only with --eval-every N; add it or leave them out")
    overrides = _overrides(args.set)
    for name in ("backend", "address"):
        if getattr(args, name) is not None:
            overrides = {**(overrides or {}), name: getattr(args, name)}
    learner = runs.start_run(args.config, args.run_dir, args.seed, args.resume, overrides)
    try:
        target = args.iterations if args.iterations is not None else learner.config.iterations
        remaining = target - learner.iteration
        if remaining <= 0:
            print(
                f"{learner.run_dir} already has {learner.iteration} iterations (>= {target}): "
                f"nothing to train; pass --iterations N (a total) to train further"
            )
            return 0
        print(
            f"{learner.algorithm} on {learner.config.family}: iterations {learner.iteration} -> "
            f"{target}, run directory {learner.run_dir}"
        )
        try:
            learner.train(remaining, callback=callback)
        except TrainingInterrupted as stop:
            config = f"{args.config} " if args.config else ""
            print(
                f"interrupted after iteration {stop.iteration}; checkpoint {stop.checkpoint}. "
                f"Continue with: metarl train {config}--run-dir {learner.run_dir} --resume",
                file=sys.stderr,
            )
            return 130
        except WorkerError as err:
            raise WorkerError(
                f"{err}. Training stopped at iteration {learner.iteration}; the run's latest "
                f"checkpoint in {learner.run_dir} stands: continue it with --resume"
            ) from None
        stats = learner.last_stats
        if stats:
            print(f"iteration {learner.iteration}: {_returns_line(stats)}")
    finally:
        learner.close()
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from metarl.evaluation import run_evaluation

    checkpoint, _ = runs.resolve_checkpoint(args.path)
    if is_baseline_checkpoint(checkpoint):
        return _evaluate_baseline(args, checkpoint)
    learner = metarl.load(checkpoint)
    try:
        if args.video and not learner.adapts_parameters:
            raise ValueError(
                f"--video films the policy before and after its parameters adapt; "
                f"{type(learner).display_name} adapts in its policy's hidden state, which "
                f"the video does not replay: evaluate without --video"
            )
        report, tasks, result = run_evaluation(
            learner,
            args.tasks,
            steps=args.steps,
            episodes=args.episodes,
            seed=args.seed,
            num_tasks=args.num_tasks,
            label=args.label or "",
            info={"checkpoint": str(checkpoint)},
            step_sizes=args.step_sizes,
        )
        default_out = runs.report_path(learner, args.tasks, args.seed, beside=checkpoint.parent)
        if args.step_sizes:  # not to overwrite the report at the trained step size
            sizes = "-".join(f"{size:g}" for size in args.step_sizes)
            default_out = default_out.with_name(f"{default_out.stem}-lr{sizes}.json")
        out = Path(args.out or default_out)
        report.save(out)
        print(report.summary())
        print(f"report: {out}")
        if args.video:
            from metarl.evaluation.video import record_adaptation_videos

            n = min(args.video_tasks, len(tasks))
            paths = record_adaptation_videos(
                learner.family,
                learner.policy,
                tasks[:n],
                {k: v.detach() for k, v in learner.policy.params().items()},
                GaussianMLPPolicy.unstack_params(result.params)[:n],
                args.video,
                fmt=args.video_format,
                seed=args.seed,
            )
            print(f"videos (before | after {args.steps} steps): {', '.join(map(str, paths))}")
    finally:
        learner.close()
    return 0


def _evaluate_baseline(args: argparse.Namespace, checkpoint: Path) -> int:
    """``metarl evaluate`` of a policy that ``metarl baseline pretrained|oracle`` saved."""
    if args.video:
        raise ValueError("--video films meta-learners' checkpoints; this one is a baseline's")
    report = evaluate_baseline_checkpoint(
        checkpoint, args.tasks, args.steps, args.episodes, args.seed, args.num_tasks,
        args.label or "",
    )  # fmt: skip
    name = f"{report.learner}-{Path(checkpoint).stem}-seed{args.seed}.json"
    out = Path(args.out or Path(checkpoint).parent / runs.EVALUATION_DIR / name)
    report.save(out)
    print(report.summary())
    print(f"report: {out}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from metarl.evaluation import AdaptationReport
    from metarl.evaluation.plot import plot_reports

    reports = [AdaptationReport.load(path) for path in args.reports]
    print(f"plot: {plot_reports(reports, args.output, args.title)}")
    return 0


def _cmd_plot_training(args: argparse.Namespace) -> int:
    from metarl.evaluation.plot import plot_progress

    print(f"plot: {plot_progress(args.runs, args.output, args.x, args.title)}")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from metarl.evaluation.evaluate import task_set_name

    compared = compared_learner(args.family, args.like, args.config, args.seed)
    check_baseline_applies(args.name, compared)  # before PPO trains for it
    timesteps = args.timesteps
    if timesteps is None and args.policy is None and args.name in POLICY_BASELINES:
        timesteps = run_env_steps(args.like) if args.like else DEFAULT_TIMESTEPS
        print(f"{args.name}: PPO trains for {timesteps:,} env steps")
    if args.out:
        out = Path(args.out)
    else:
        name = task_set_name(args.tasks)
        folder = Path(args.like) if args.like and Path(args.like).is_dir() else Path("runs")
        out = folder / runs.EVALUATION_DIR / f"baseline-{args.name}-{name}.json"
    save_policy = args.save_policy
    if save_policy is None and args.policy is None and args.name in POLICY_BASELINES:
        save_policy = out.with_suffix(".safetensors")  # PPO's training is worth keeping
    report = run_baseline(
        args.name,
        compared,
        args.tasks,
        steps=args.steps,
        episodes=args.episodes,
        seed=args.seed or 0,
        num_tasks=args.num_tasks,
        timesteps=timesteps or DEFAULT_TIMESTEPS,
        label=args.label or "",
        policy=args.policy,
        save_policy=save_policy,
    )
    report.save(out)
    print(report.summary())
    print(f"report: {out}")
    if save_policy is not None:
        print(f"policy (metarl evaluate re-evaluates it): {save_policy}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from metarl.sb3_bridge import export_sb3

    learner = metarl.load(args.path)
    try:
        task = None
        if args.task:
            try:
                values = json.loads(args.task)
            except json.JSONDecodeError as err:
                raise ValueError(f"--task must be a JSON dict of task parameters: {err}") from None
            task = learner.family.task_from_dict(values)
        path = export_sb3(learner, args.output, task, args.episodes, args.steps, args.seed)
    finally:
        learner.close()
    what = "meta-learned policy" if task is None else f"policy adapted to {task!r}"
    print(f"{what} written as a Stable-Baselines3 PPO model: {path}")
    return 0


def _add_evaluation_options(parser: argparse.ArgumentParser) -> None:
    """The options ``evaluate`` and ``baseline`` share: which tasks, what budget, the seed."""
    parser.add_argument(
        "--tasks",
        default="test",
        help="test (held-out, default), ood (out-of-distribution held-out), train (fresh "
        "training draws), or FILE.json: a list of task dicts",
    )
    parser.add_argument("--num-tasks", type=int, default=40, help="tasks of a named set")
    parser.add_argument("--steps", type=int, default=3, help="adaptation steps (default 3)")
    parser.add_argument(
        "--episodes", type=int, default=20, help="episodes per task and step (default 20)"
    )
    parser.add_argument("--out", help="report file, .json or .csv")


_DEBUG_HELP = "show the full traceback of an error instead of its one-line message"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metarl", description="Meta-reinforcement learning for robot control."
    )
    parser.add_argument("--version", action="version", version=f"metarl {metarl.__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    families = commands.add_parser(
        "families",
        help="list the registered task families",
        description="List the registered task families with their horizon and parameters.",
    )
    families.add_argument("id", nargs="?", help="describe this family in full")
    families.set_defaults(func=_cmd_families)
    algorithms = commands.add_parser(
        "algorithms",
        help="list the registered meta-learners",
        description="List the registered meta-learners: the name config files use "
        "(algorithm: ...), the legend name, the class, and where the registration came from.",
    )
    algorithms.set_defaults(func=_cmd_algorithms)
    train = commands.add_parser(
        "train",
        help="meta-train a policy (default: MAML-TRPO on Navigation2D-v0)",
        description="Meta-train a policy initialisation from a YAML config (see experiments/); "
        "with no config, MAML-TRPO on Navigation2D-v0 for 30 iterations.",
    )
    train.add_argument("config", nargs="?", help="YAML config file (algorithm, family, fields)")
    train.add_argument("--run-dir", help="where logs and checkpoints go (default: runs/...)")
    train.add_argument("--seed", type=_seed, help="override the config's seed")
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field (repeatable), e.g. --set inner_lr=0.01",
    )
    train.add_argument(
        "--iterations",
        type=_positive_int,
        metavar="N",
        help="train until the run has N iterations in all, counting those it has (a total, "
        "also with --resume; default: the config's iterations). In Python, learner.train(n) "
        "runs n more",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run directory's latest checkpoint"
    )
    train.add_argument(
        "--backend",
        help="where the sampler runs the envs: local (this machine, the default) or ray (a Ray "
        'cluster: pip install "metarl[ray]"); the same batches either way',
    )
    train.add_argument(
        "--address",
        help="with --backend ray, the cluster to join: auto, or ray://HEAD:10001 (default: "
        "$RAY_ADDRESS, else a local Ray instance)",
    )
    held_out = train.add_argument_group(
        "held-out evaluation during training",
        "every N iterations, the adaptation curve on held-out tasks (as metarl evaluate), "
        "logged as heldout/* and saved under RUN_DIR/evaluation/; the best iteration is kept "
        "as RUN_DIR/checkpoints/best.safetensors",
    )
    held_out.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N iterations")
    held_out.add_argument("--eval-tasks", help="test (default), ood, train, or FILE.json")
    held_out.add_argument("--eval-num-tasks", type=int, help="tasks (default 40)")
    held_out.add_argument("--eval-steps", type=int, help="adaptation steps (default 3)")
    held_out.add_argument(
        "--eval-episodes", type=int, help="episodes per task and step (default 20)"
    )
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="adaptation curve on held-out tasks: return after 0..K adaptation steps",
        description="Adapt a trained learner to each task with its own inner procedure, "
        "sampling EPISODES episodes before each step and after the last; report every return, "
        "with the mean, std and 95% CI per step.",
    )
    evaluate.add_argument("path", help="a run directory (its latest checkpoint) or a checkpoint")
    _add_evaluation_options(evaluate)
    evaluate.add_argument("--seed", type=_seed, default=0, help="the evaluation's seed")
    evaluate.add_argument("--label", help="legend text (default: the algorithm and iteration)")
    evaluate.add_argument(
        "--step-sizes",
        type=float,
        nargs="+",
        metavar="LR",
        help="MAML-TRPO: the inner step size of each adaptation step, the last repeating "
        "(default: the inner_lr it trained with), e.g. 0.5 0.25 as the MAML authors' 2D "
        "navigation evaluation",
    )
    evaluate.add_argument(
        "--video", metavar="DIR", help="film a few tasks before and after adaptation into DIR"
    )
    evaluate.add_argument("--video-tasks", type=int, default=3, help="tasks to film (default 3)")
    evaluate.add_argument(
        "--video-format", choices=("gif", "mp4"), default="gif", help="mp4 needs metarl[video]"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    plot = commands.add_parser(
        "plot",
        help="draw evaluation reports as adaptation curves",
        description="Adaptation curves (mean return per step with its 95% CI band), one line "
        "per report, one panel per task family.",
    )
    plot.add_argument("reports", nargs="+", help="report files (.json or .csv)")
    plot.add_argument(
        "-o", "--output", required=True, help="image file to write (.png, .pdf, .svg)"
    )
    plot.add_argument("--title", help="panel title (default: the family and its task set)")
    plot.set_defaults(func=_cmd_plot)

    training = commands.add_parser(
        "plot-training",
        help="draw runs' training curves (progress.csv)",
        description="The returns each run logged per iteration (before and after adaptation, "
        "and any held-out evaluation), against env steps or iterations.",
    )
    training.add_argument("runs", nargs="+", help="run directories (or their progress.csv)")
    training.add_argument("-o", "--output", required=True, help="image file (.png, .pdf, .svg)")
    training.add_argument("--x", choices=("env_steps", "iteration"), default="env_steps")
    training.add_argument("--title", help="panel title (default: training curves)")
    training.set_defaults(func=_cmd_plot_training)

    baseline = commands.add_parser(
        "baseline",
        help="measure a baseline (random-init, pretrained, pretrained-finetune, ppo-scratch, "
        "oracle) like evaluate",
        description="What a user would do without meta-learning, measured with the evaluate "
        "protocol and budget into the same report: random-init (a fresh policy adapted with the "
        "inner procedure), pretrained (SB3 PPO on the whole distribution, then adapted), "
        "pretrained-finetune (the same, then fine-tuned on each task with SB3 PPO), "
        "ppo-scratch (SB3 PPO on each task with the same episode budget), oracle (SB3 PPO "
        "that observes the task).",
    )
    baseline.add_argument("name", choices=BASELINES, help="the baseline")
    source = baseline.add_mutually_exclusive_group(required=True)
    source.add_argument("--family", help="a family id (MAML-TRPO's inner procedure and policy)")
    source.add_argument(
        "--like",
        help="a run directory or one of its checkpoints: its family, policy and inner procedure",
    )
    source.add_argument("--config", help="a config file: its family, policy and inner procedure")
    _add_evaluation_options(baseline)
    baseline.add_argument(
        "--seed", type=_seed, help="seed of the evaluation and of the baseline's policy"
    )
    baseline.add_argument(
        "--timesteps",
        type=int,
        help="PPO's training env steps for pretrained(-finetune) and oracle (default: with "
        "--like, the env steps the run meta-trained for, an equal budget; else "
        f"{DEFAULT_TIMESTEPS:,})",
    )
    baseline.add_argument("--label", help="legend text (default: the baseline's name)")
    baseline.add_argument(
        "--policy",
        metavar="FILE",
        help="pretrained(-finetune)/oracle: use this saved policy instead of training PPO (a "
        "file an earlier run saved, e.g. to adapt it with another learner's inner procedure; "
        "pretrained-finetune takes a pretrained one)",
    )
    baseline.add_argument(
        "--save-policy",
        metavar="FILE",
        help="pretrained(-finetune)/oracle: where to save the trained policy (default: beside the "
        "report, as .safetensors; metarl evaluate FILE re-evaluates it)",
    )
    baseline.set_defaults(func=_cmd_baseline)

    export = commands.add_parser(
        "export",
        help="write the meta-learned (or adapted) policy as a Stable-Baselines3 model",
        description="Write a run's policy as a Stable-Baselines3 PPO .zip (PPO.load reads it; "
        "its deterministic actions are ours). With --task, the policy adapted to that task.",
    )
    export.add_argument("path", help="a run directory (its latest checkpoint) or a checkpoint")
    export.add_argument("--format", choices=("sb3",), default="sb3", help="sb3 (the default)")
    export.add_argument("-o", "--output", required=True, help="the .zip to write")
    export.add_argument(
        "--task", help="adapt to this task first, a JSON dict: '{\"velocity\": 1.5}'"
    )
    export.add_argument("--episodes", type=int, default=20, help="episodes per adaptation step")
    export.add_argument("--steps", type=int, default=1, help="adaptation steps (default 1)")
    export.add_argument("--seed", type=_seed, default=0, help="seed of the exported value network")
    export.set_defaults(func=_cmd_export)
    for command in commands.choices.values():  # `metarl train --debug` works too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metarl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (KeyError, ValueError, TypeError, ImportError, FileNotFoundError) as err:
        if args.debug:
            raise
        print(f"metarl: error: {err}", file=sys.stderr)
        return 2
    except WorkerError as err:  # a fault, not bad input: the workers kept dying
        if args.debug:
            raise
        print(f"metarl: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
        if args.debug:
            raise
        print("metarl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
