"""Training callbacks: held-out evaluation during training (logged, saved, best checkpoint
kept, training unchanged), early stopping, the widening log, the CLI flags, bad input."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import metarl
from metarl.algos.callbacks import Callback, CallbackList, StopTrainingOnReturn
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.algos.promp import ProMP
from metarl.algos.reptile import Reptile
from metarl.algos.rl2 import RL2
from metarl.cli import main
from metarl.evaluation import AdaptationReport
from metarl.evaluation.callbacks import EvaluationCallback
from metarl.runs import RunLog
from tests.test_maml_trpo import flat_params
from tests.test_maml_trpo import tiny_config as maml_config
from tests.test_promp import tiny_config as promp_config
from tests.test_reptile import tiny_config as reptile_config
from tests.test_rl2 import tiny_config as rl2_config

LEARNERS = [
    (MAMLTRPO, maml_config),
    (ProMP, promp_config),
    (Reptile, reptile_config),
    (RL2, rl2_config),
]
IDS = ["maml_trpo", "promp", "reptile", "rl2"]


def _rows(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("cls", "config"), LEARNERS, ids=IDS)
def test_evaluation_during_training_is_logged_saved_and_changes_nothing(tmp_path, cls, config):
    """Held-out evaluation every 2 iterations: training is bit-identical to a run without it;
    the means are in the log on those iterations only; each report is saved; the best
    iteration's checkpoint reproduces its report exactly."""
    plain = cls(config()).train(4)
    expected = flat_params(plain)
    plain.close()

    run = tmp_path / "run"
    evaluation = EvaluationCallback(every=2, num_tasks=3, episodes=2, steps=2)
    with cls(config(), run_dir=run) as learner:
        learner.train(4, callback=evaluation)
        assert torch.equal(flat_params(learner), expected)
        assert learner.sampler.state_dict() == plain.sampler.state_dict()

    rows = _rows(run)
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["heldout/return_step_2"] != "" for r in rows] == [False, True, False, True]
    assert len(evaluation.reports) == 2
    for row, report in zip(rows[1::2], evaluation.reports, strict=True):
        assert float(row["heldout/return_step_0"]) == report.mean_return[0]
        assert float(row["heldout/gain"]) == report.mean_return[2] - report.mean_return[0]
        saved = run / "evaluation" / f"test-iter{int(row['iteration']):06d}-seed0.json"
        assert AdaptationReport.load(saved).mean_return == report.mean_return

    scores = [r.mean_return[-1] for r in evaluation.reports]
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["iteration"] == 2 * (1 + scores.index(max(scores)))
    assert best["score"] == max(scores) == evaluation.best_score
    reloaded = metarl.load(run / "checkpoints" / "best.safetensors")
    assert reloaded.iteration == best["iteration"]
    again = metarl.evaluate(reloaded, num_tasks=3, episodes=2, steps=2)
    assert again.mean_return == AdaptationReport.load(run / best["report"]).mean_return
    reloaded.close()


def test_a_resumed_run_keeps_the_best_so_far(tmp_path):
    run = tmp_path / "run"
    with MAMLTRPO(maml_config(), run_dir=run) as learner:
        learner.train(2, callback=EvaluationCallback(every=2, num_tasks=2, episodes=2, steps=1))
    record = json.loads((run / "checkpoints" / "best.json").read_text())
    resumed = metarl.load(run)
    fresh = EvaluationCallback(every=100, num_tasks=2, episodes=2, steps=1)
    resumed.train(1, callback=fresh)
    resumed.close()
    assert (fresh.best_iteration, fresh.best_score) == (2, record["score"])


def test_stopping_early_checkpoints_the_last_iteration_and_ends_the_callbacks(tmp_path):
    calls = []

    class StopAtThree(Callback):
        def on_training_start(self, learner):
            calls.append("start")

        def on_iteration_end(self, learner, stats):
            stats["custom"] = 10.0 * learner.iteration
            return learner.iteration < 3

        def on_training_end(self, learner):
            calls.append(f"end at {learner.iteration}")

    run = tmp_path / "run"
    with MAMLTRPO(maml_config(), run_dir=run) as learner:  # checkpoint_every=2
        learner.train(10, callback=[StopAtThree()])
        assert learner.iteration == 3
    assert calls == ["start", "end at 3"]
    assert [r["custom"] for r in _rows(run)] == ["10.0", "20.0", "30.0"]
    assert metarl.load(run).iteration == 3  # the stopped iteration was checkpointed

    with MAMLTRPO(maml_config()) as learner:
        learner.train(5, callback=StopTrainingOnReturn(-1e9))  # any return reaches it
        assert learner.iteration == 1
        learner.train(5, callback=StopTrainingOnReturn(1e9, key="return_before"))
        assert learner.iteration == 6


def test_callback_list_asks_every_callback():
    seen = []

    class Answer(Callback):
        def __init__(self, answer):
            self.answer = answer

        def on_iteration_end(self, learner, stats):
            seen.append(self.answer)
            return self.answer

    assert CallbackList([Answer(False), Answer(None)]).on_iteration_end(None, {}) is False
    assert seen == [False, None]  # the second was still called
    assert CallbackList([Answer(True), Answer(None)]).on_iteration_end(None, {}) is True


def test_bad_callbacks_and_settings_are_refused_before_training(tmp_path):
    with MAMLTRPO(maml_config()) as learner:
        with pytest.raises(TypeError, match="Callback"):
            learner.train(1, callback="evaluate")
        with pytest.raises(TypeError, match="Callback instances, got function"):
            learner.train(1, callback=[lambda learner, stats: None])
        bad = tmp_path / "tasks.json"
        bad.write_text(json.dumps([{"goal": [0.1, 0.2]}, {"goal": [9.0, 9.0]}]))
        with pytest.raises(ValueError, match="goal"):
            learner.train(1, callback=EvaluationCallback(every=1, tasks=str(bad)))
        assert learner.iteration == 0  # refused before any iteration ran
        with pytest.raises(KeyError, match="return_aftr"):
            learner.train(1, callback=StopTrainingOnReturn(0.0, key="return_aftr"))
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        EvaluationCallback(every=0)
    with pytest.raises(ValueError, match="episodes must be an int >= 1"):
        EvaluationCallback(every=1, episodes=0)
    with pytest.raises(ValueError, match="finite"):
        StopTrainingOnReturn(float("nan"))


def test_the_log_widens_when_a_statistic_first_appears(tmp_path):
    log = RunLog(tmp_path)
    log.write(1, {"a": 1.0})
    log.write(2, {"a": 2.0, "b": 5.0})
    log.write(3, {"a": 3.0})
    log.close()
    assert (tmp_path / "progress.csv").read_text().splitlines() == [
        "iteration,a,b",
        "1,1.0,",
        "2,2.0,5.0",
        "3,3.0,",
    ]


def test_train_cli_evaluates_every_n_iterations(tmp_path, capsys):
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(
        "algorithm: maml_trpo\nfamily: Navigation2D-v0\nmeta_batch_size: 2\n"
        "fast_batch_size: 2\nhidden_sizes: [8]\nnum_workers: 0\niterations: 2\n"
    )
    argv = ["train", str(config), "--run-dir", str(run), "--eval-every", "1"]
    argv += ["--eval-num-tasks", "2", "--eval-episodes", "2", "--eval-steps", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "iteration 2: held-out return after 0..1 adaptation steps:" in out
    assert sorted(p.name for p in (run / "evaluation").iterdir()) == [
        "test-iter000001-seed0.json",
        "test-iter000002-seed0.json",
    ]
    assert (run / "checkpoints" / "best.safetensors").exists()
    bad = ["train", str(config), "--run-dir", str(tmp_path / "other"), "--eval-every", "0"]
    assert main(bad) == 2
    assert "every must be an int >= 1" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()  # refused before the run directory was made
    alone = ["train", str(config), "--run-dir", str(tmp_path / "other"), "--eval-steps", "1"]
    assert main(alone) == 2
    assert "--eval-steps take effect only with --eval-every N" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
