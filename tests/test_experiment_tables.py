"""The scripts that turn evaluation reports into RESULTS.md's tables
(experiments/report_table.py, experiments/search_table.py), on small reports whose figures
are computed by hand here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from metarl.algos.config import config_to_dict
from metarl.algos.reptile import ReptileConfig
from metarl.evaluation import AdaptationReport

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
TASKS = ({"direction": 1}, {"direction": -1}, {"direction": 1})


def _report(learner: str, per_task: list[list[float]], **info) -> AdaptationReport:
    """A report whose task i after step k has the two returns per_task[i][k] -+ 1 (mean
    per_task[i][k])."""
    returns = [[[r - 1.0, r + 1.0] for r in steps] for steps in per_task]
    return AdaptationReport(
        family="HalfCheetahDir-v0",
        learner=learner,
        tasks=TASKS,
        returns=returns,
        episodes=2,
        label=learner,
        info={"task_set": "test", **info},
    )


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_search_table_pairs_each_variant_with_its_comparisons(tmp_path: Path) -> None:
    # Reptile gains 10, 12, 14 (mean 12); random init gains 0, 2, 1 (mean 1): the paired
    # differences 10, 10, 13 (mean 11); no pretrained comparison for this variant.
    base = {"inner_lr": 0.001, "inner_steps": 3}
    _report("reptile", [[0, 0], [0, 0], [0, 0]], env_steps=48_000_000, config=base).save(
        tmp_path / "base.json"
    )
    lr = {"inner_lr": 0.01, "inner_steps": 3}
    _report("reptile", [[0, 10], [5, 17], [1, 15]], env_steps=48_000_000, config=lr).save(
        tmp_path / "lr.json"
    )
    _report("random-init", [[-5, -5], [-6, -4], [-7, -6]]).save(tmp_path / "random_init_lr.json")
    table = _run("search_table.py", str(tmp_path))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:] if "|" in line}
    assert sorted(rows) == ["base", "lr"], table
    assert "| (the base config) |" in rows["base"]
    cells = [cell.strip() for cell in rows["lr"].strip("|").split("|")]
    assert cells[:5] == ["lr", "inner_lr = 0.01", "48M", "2.0", "14.0"]
    assert cells[5].startswith("+12.0 [")
    assert cells[6].startswith("+1.0 [")
    assert cells[7].startswith("+11.0 [")
    assert cells[8:] == ["-", "-"]


def test_search_table_names_changes_against_a_config_file_before_the_base_runs(
    tmp_path: Path,
) -> None:
    config = tmp_path / "reptile.yaml"
    config.write_text("algorithm: reptile\nfamily: HalfCheetahDir-v0\ninner_lr: 0.001\n")
    settings = config_to_dict(ReptileConfig(family="HalfCheetahDir-v0", inner_lr=0.001))
    variant = {**settings, "meta_batch_size": 10}
    _report("reptile", [[0, 1], [0, 1], [0, 1]], env_steps=1, config=variant).save(
        tmp_path / "tasks10.json"
    )
    table = _run("search_table.py", str(tmp_path), "--base-config", str(config))
    assert "| tasks10 | meta_batch_size = 10 |" in table, table
    without = _run("search_table.py", str(tmp_path))  # nothing to compare with: every setting
    assert "inner_lr = 0.001" in without


def test_report_table_budget_oracle_fraction_and_versus(tmp_path: Path) -> None:
    maml = tmp_path / "maml.json"
    _report("maml_trpo", [[0, 10], [0, 20], [0, 30]], env_steps=96_000_000).save(maml)
    oracle = tmp_path / "oracle.json"
    _report("oracle", [[40, 40], [40, 40], [40, 40]], ppo_timesteps=96_000_000).save(oracle)
    table = _run(
        "report_table.py",
        "--oracle-fraction",
        "0.5",
        "--versus",
        str(oracle),
        str(maml),
        str(oracle),
    )
    maml_row = next(line for line in table.splitlines() if line.startswith("| maml_trpo "))
    cells = [cell.strip() for cell in maml_row.strip("|").split("|")]
    # budget, step 0, step 1, gain, episodes to 0.5 x 40 (step 1, 2 episodes), versus oracle
    assert cells[1:4] == ["96M", "0.0", "20.0"]
    assert cells[4].startswith("+20.0 [")
    assert cells[5] == "2"
    assert cells[6].startswith("-20.0 [")  # 20 - 40 at the last step
    assert cells[7].startswith("+20.0 [")  # gained 20 more than the oracle's 0


def test_report_table_versus_at_an_earlier_step(tmp_path: Path) -> None:
    longer = tmp_path / "longer.json"
    _report("promp", [[0, 10, 50], [0, 20, 50], [0, 30, 50]], env_steps=1).save(longer)
    shorter = tmp_path / "shorter.json"
    _report("maml_trpo", [[0, 5], [0, 5], [0, 5]], env_steps=1).save(shorter)
    table = _run("report_table.py", "--versus", str(shorter), "--step", "1", str(longer))
    row = next(line for line in table.splitlines() if line.startswith("| promp "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert "step 1 minus maml_trpo's" in table
    assert cells[-2].startswith("+15.0 [")  # mean of 10, 20, 30 against 5, at step 1
    failed = subprocess.run(
        [
            sys.executable,
            str(EXPERIMENTS / "report_table.py"),
            "--versus",
            str(shorter),
            str(longer),
        ],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "step 2 is not in every report" in failed.stderr


def test_speed_fit_finds_a_fixed_speed_and_its_slope() -> None:
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        from speed_fit import speed_fit
    finally:
        sys.path.remove(str(EXPERIMENTS))
    targets = np.linspace(0.0, 2.0, 9)
    fixed = 3.0 - 200.0 * np.abs(targets - 0.5)  # runs at 0.5 whatever the target
    v, slope, r2 = speed_fit(targets, fixed, np.linspace(0.0, 2.0, 41))
    assert (v, round(slope, 6), round(r2, 6)) == (0.5, 200.0, 1.0)
    tracking = -50.0 * np.abs(targets - 0.5)  # partly tracks: a smaller slope
    assert speed_fit(targets, tracking, np.linspace(0.0, 2.0, 41))[1] < 200.0
