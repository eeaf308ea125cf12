"""Held-out evaluation: the report's numbers by hand, JSON/CSV round trips, the protocol (step k
sampled after k adaptation steps with the learner's own procedure), task files, the CLI and
the plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import metarl
from metarl import runs
from metarl.algos.maml import adapt
from metarl.algos.policy_gradient import TaskData
from metarl.cli import main
from metarl.evaluation import AdaptationReport, evaluate, resolve_tasks
from metarl.evaluation.evaluate import episode_returns
from metarl.evaluation.plot import plot_reports
from metarl.policies import GaussianMLPPolicy
from metarl.seeds import evaluation_step as step_seed

unstack = GaussianMLPPolicy.unstack_params
T_975_DF1 = 12.706204736174698  # Student t, 97.5% quantile, 1 degree of freedom (tables)


def hand_report(**changes) -> AdaptationReport:
    values = dict(
        family="Navigation2D-v0",
        learner="maml_trpo",
        tasks=[{"goal": [0.1, 0.2]}, {"goal": [-0.3, 0.0]}],
        #          step 0      step 1
        returns=[[[1.0, 3.0], [5.0, 7.0]], [[2.0, 2.0], [6.0, 10.0]]],
        episodes=2,
        seed=3,
        info={"task_set": "given"},
    )
    return AdaptationReport(**{**values, **changes})


def tiny_learner(**changes) -> metarl.MAMLTRPO:
    values = dict(
        family="Navigation2D-v0",
        meta_batch_size=2,
        fast_batch_size=3,
        num_workers=0,
        hidden_sizes=(8,),
        iterations=2,
    )
    return metarl.MAMLTRPO(metarl.MAMLTRPOConfig(**{**values, **changes}))


# ---------------------------------------------------------------------------- the report
def test_the_summary_by_hand():
    report = hand_report()
    assert report.steps == [0, 1]
    # task means: step 0: 2 and 2; step 1: 6 and 8
    np.testing.assert_array_equal(report.task_means(), [[2.0, 6.0], [2.0, 8.0]])
    assert report.mean_return == [2.0, 7.0]
    assert report.std[0] == 0.0 and report.std[1] == pytest.approx(math.sqrt(2))
    (lo0, hi0), (lo1, hi1) = report.ci95
    assert (lo0, hi0) == (2.0, 2.0)
    half = T_975_DF1 * math.sqrt(2) / math.sqrt(2)
    assert lo1 == pytest.approx(7.0 - half) and hi1 == pytest.approx(7.0 + half)
    assert report.label == "maml_trpo"  # no label given: the learner's name
    # The gain, paired per task: 6 - 2 and 8 - 2, so mean 5, std sqrt(2).
    gain, (g_lo, g_hi) = report.gain(1)
    assert gain == 5.0
    assert g_lo == pytest.approx(5.0 - T_975_DF1) and g_hi == pytest.approx(5.0 + T_975_DF1)
    assert report.gain(0) == (0.0, (0.0, 0.0))
    assert report.to_dict()["gain"] == [0.0, 5.0]


def test_paired_differences_by_hand():
    ours = hand_report()  # task means: [[2, 6], [2, 8]]
    theirs = hand_report(returns=[[[0.0, 2.0], [2.0, 2.0]], [[1.0, 1.0], [5.0, 5.0]]])
    # theirs: [[1, 2], [1, 5]]. At step 1: 6 - 2 = 4 and 8 - 5 = 3: mean 3.5, std sqrt(1/2).
    diff, (low, high) = ours.paired_difference(theirs, 1)
    half = T_975_DF1 * math.sqrt(0.5) / math.sqrt(2)
    assert diff == 3.5 and low == pytest.approx(3.5 - half) and high == pytest.approx(3.5 + half)
    # gains: ours 4 and 6, theirs 1 and 4: differences 3 and 2
    diff, (low, high) = ours.paired_difference(theirs, 1, reference=0)
    assert diff == 2.5 and low == pytest.approx(2.5 - half)
    other_tasks = hand_report(tasks=[{"goal": [0.0, 0.0]}, {"goal": [-0.3, 0.0]}])
    with pytest.raises(ValueError, match="different tasks"):
        ours.paired_difference(other_tasks, 1)


def test_where_keeps_the_tasks_with_those_parameters():
    report = hand_report()
    second = report.where(goal=[-0.3, 0.0])
    assert second.tasks == ({"goal": [-0.3, 0.0]},)
    assert second.mean_return == [2.0, 8.0]  # the second task's means alone
    assert second.info["where"] == {"goal": [-0.3, 0.0]} and second.label == report.label
    with pytest.raises(KeyError, match="no parameter \\['direction'\\]; they have \\['goal'\\]"):
        report.where(direction=1)
    with pytest.raises(ValueError, match="no task has"):
        report.where(goal=[9.0, 9.0])
    with pytest.raises(ValueError, match="at least one"):
        report.where()


def test_unstable_episodes_are_left_out_of_the_means():
    report = hand_report(returns=[[[1.0, None], [5.0, 7.0]], [[None, None], [6.0, 10.0]]])
    np.testing.assert_array_equal(report.task_means()[:, 1], [6.0, 8.0])
    assert report.task_means()[0, 0] == 1.0 and math.isnan(report.task_means()[1, 0])
    assert report.mean_return[0] == 1.0  # one task left: no spread, no interval
    assert math.isnan(report.std[0]) and all(math.isnan(v) for v in report.ci95[0])
    assert report.unstable_episodes == 3
    assert json.loads(json.dumps(report.to_dict()))["ci95"][0] == [None, None]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_report_files_round_trip(tmp_path, suffix):
    report = hand_report(
        returns=[[[1.0, None], [5.0, 7.25, 1e-9]], [[2.0, 2.0], [6.0, 10.0]]],  # ragged
        info={"task_set": "test", "config": {"hidden_sizes": [8]}},
    )
    path = report.save(tmp_path / f"report{suffix}")
    loaded = AdaptationReport.load(path)
    assert loaded == report
    assert loaded.mean_return == report.mean_return


def test_the_json_report_has_the_documented_fields(tmp_path):
    data = json.loads(hand_report().save(tmp_path / "r.json").read_text())
    for key in ("family", "learner", "steps", "mean_return", "ci95", "tasks"):
        assert key in data, key
    assert data["steps"] == [0, 1] and data["mean_return"] == [2.0, 7.0]
    assert data["tasks"][1] == {"task": {"goal": [-0.3, 0.0]}, "returns": [[2.0, 2.0], [6.0, 10.0]]}


def test_bad_reports_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="one list of per-step returns per task"):
        hand_report(returns=[[[1.0]]])
    with pytest.raises(ValueError, match="same number of steps"):
        hand_report(returns=[[[1.0], [2.0]], [[1.0]]])
    with pytest.raises(ValueError, match="must be finite"):
        hand_report(returns=[[[float("nan")]], [[1.0]]])
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        hand_report().save(tmp_path / "report.txt")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a metarl adaptation report"):
        AdaptationReport.load(tmp_path / "other.json")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a metarl adaptation report CSV"):
        AdaptationReport.load(tmp_path / "other.csv")


# ---------------------------------------------------------------------------- the protocol
def test_evaluate_follows_the_protocol_step_by_step():
    """Step 0 is sampled with the meta-parameters; step 1 with the parameters MAML's inner
    step computes from step 0's episodes; each step's sampling is seeded by (seed, step)."""
    with tiny_learner() as learner:
        tasks = learner.family.test_tasks(3)
        report = evaluate(learner, tasks, steps=2, episodes=4, seed=5)
        assert report.steps == [0, 1, 2] and report.num_tasks == 3
        assert all(len(eps) == 4 for per_step in report.returns for eps in per_step)

        # Every task starts from its own copy of the meta-parameters (stacked, as the loop
        # holds them: a vmapped forward, which may round unlike one shared forward).
        theta = learner.stacked_params(3)
        first = learner.sampler.sample(tasks, unstack(theta), 4, seed=step_seed(5, 0))
        assert [list(r[0]) for r in report.returns] == episode_returns(first)
        data = TaskData.from_batch(first, learner.config.gamma, learner.config.gae_lambda)
        adapted = adapt(learner.policy, theta, data, learner.config.inner_lr, True, stacked=True)
        params = unstack(adapted)
        second = learner.sampler.sample(tasks, params, 4, seed=step_seed(5, 1))
        assert [list(r[1]) for r in report.returns] == episode_returns(second)


def test_a_step_size_schedule_takes_each_size_in_turn_and_repeats_the_last():
    """step_sizes [a, b]: step 0 -> 1 with a, steps 1 -> 2 and 2 -> 3 with b, by hand; the
    report records the schedule; the learner's own inner_lr is left as it was."""
    sizes = [0.5, 0.25]
    with tiny_learner(inner_lr=0.1) as learner:
        tasks = learner.family.test_tasks(2)
        report = evaluate(learner, tasks, steps=3, episodes=3, seed=2, step_sizes=sizes)
        assert report.info["inner_step_sizes"] == sizes and learner.config.inner_lr == 0.1
        cfg, params = learner.config, learner.stacked_params(2)
        for k, size in enumerate([0.5, 0.25, 0.25]):
            batch = learner.sampler.sample(tasks, unstack(params), 3, seed=step_seed(2, k))
            assert [list(r[k]) for r in report.returns] == episode_returns(batch)
            data = TaskData.from_batch(batch, cfg.gamma, cfg.gae_lambda)
            params = adapt(learner.policy, params, data, size, True, stacked=True)
        last = learner.sampler.sample(tasks, unstack(params), 3, seed=step_seed(2, 3))
        assert [list(r[3]) for r in report.returns] == episode_returns(last)
        # The trained step size is the default, and a schedule of it changes nothing.
        plain = evaluate(learner, tasks, steps=2, episodes=3, seed=2)
        same = evaluate(learner, tasks, steps=2, episodes=3, seed=2, step_sizes=[0.1])
        assert same.returns == plain.returns
        for bad in ([0.5, 0.0], [math.nan], "0.5", [True]):
            with pytest.raises(ValueError, match="step.size"):
                evaluate(learner, tasks, steps=1, episodes=2, step_sizes=bad)


def test_a_step_size_schedule_is_refused_by_a_learner_without_one():
    config = metarl.ReptileConfig(
        family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=2, inner_steps=1,
        ppo_minibatches=1, num_workers=0, hidden_sizes=(8,), iterations=1,
    )  # fmt: skip
    with metarl.Reptile(config) as learner, pytest.raises(ValueError, match="maml_trpo"):
        evaluate(learner, "test", steps=1, episodes=2, num_tasks=2, step_sizes=[0.5])


def test_evaluate_is_repeatable_and_leaves_the_learner_as_it_was():
    with tiny_learner() as learner:
        state = (learner.sampler.state_dict(), learner.iteration, learner.env_steps)
        params = [p.detach().clone() for p in learner.policy.parameters()]
        a = evaluate(learner, "test", steps=1, episodes=2, num_tasks=3, seed=0)
        assert (learner.sampler.state_dict(), learner.iteration, learner.env_steps) == state
        assert all(
            torch.equal(p, q) for p, q in zip(params, learner.policy.parameters(), strict=True)
        )
        assert evaluate(learner, "test", steps=1, episodes=2, num_tasks=3, seed=0) == a
        assert evaluate(learner, "test", steps=1, episodes=2, num_tasks=3, seed=1) != a
        assert a.info["task_set"] == "test"
        assert a.tasks == tuple(t.to_dict() for t in learner.family.test_tasks(3))


def test_reptile_evaluates_with_its_own_inner_loop():
    config = metarl.ReptileConfig(
        family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=4, inner_steps=1,
        ppo_minibatches=2, num_workers=0, hidden_sizes=(8,), iterations=1,
    )  # fmt: skip
    with metarl.Reptile(config) as learner:
        tasks = learner.family.test_tasks(2)
        report = evaluate(learner, tasks, steps=1, episodes=4, seed=0)
        adaptation = learner.adaptation(tasks, seed=0)
        first = learner.sampler.sample(tasks, unstack(adaptation.params), 4, seed=step_seed(0, 0))
        adaptation.step(first)
        phi = unstack(adaptation.params)
        second = learner.sampler.sample(tasks, phi, 4, seed=step_seed(0, 1))
        assert [list(r[1]) for r in report.returns] == episode_returns(second)
        assert report.learner == "reptile"


# ---------------------------------------------------------------------------- task sets
def test_task_sets_and_task_files(tmp_path):
    family = metarl.make_family("HalfCheetahVel-v0")
    assert resolve_tasks(family, "test", 4)[0] == family.test_tasks(4)
    assert resolve_tasks(family, "ood", 2)[0] == family.ood_tasks(2)
    train, name = resolve_tasks(family, "train", 3, seed=1)
    assert name == "train" and train == family.sample_tasks(3, np.random.default_rng(1))
    good = tmp_path / "mine.json"
    good.write_text(json.dumps([{"velocity": 0.5}, {"velocity": 2.5}]))
    tasks, name = resolve_tasks(family, str(good))
    assert [t.velocity for t in tasks] == [0.5, 2.5] and name == str(good)


def test_a_task_file_with_an_invalid_task_is_rejected_with_the_reason(tmp_path):
    family = metarl.make_family("HalfCheetahVel-v0")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"velocity": 0.5}, {"velocity": 9.0}]))
    with pytest.raises(ValueError, match=r"bad.json: task 1: .*velocity=9.0 is out of range"):
        resolve_tasks(family, str(bad))
    bad.write_text(json.dumps([{"speed": 1.0}]))
    with pytest.raises(ValueError, match=r"task 0: .*no parameter\(s\) \['speed'\]"):
        resolve_tasks(family, bad)
    bad.write_text(json.dumps({"velocity": 1.0}))
    with pytest.raises(ValueError, match="non-empty JSON list of task dicts"):
        resolve_tasks(family, bad)
    with pytest.raises(ValueError, match="one of"):
        resolve_tasks(family, "validation")
    other = metarl.make_family("Navigation2D-v0").default_task()
    with pytest.raises(ValueError, match="task 0: it belongs to Navigation2D-v0"):
        resolve_tasks(family, [other])


# ---------------------------------------------------------------------------- CLI and plot
def test_metarl_evaluate_and_plot(tmp_path, capsys):
    with tiny_learner() as learner:
        runs.write_checkpoint(learner, runs.checkpoint_path(tmp_path / "run", 0))
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"goal": [0.1, 0.1]}, {"goal": [-0.4, 0.2]}]))
    out = tmp_path / "report.json"
    args = ["evaluate", str(tmp_path / "run"), "--tasks", str(tasks), "--steps", "1"]
    assert main([*args, "--episodes", "2", "--out", str(out), "--label", "mine"]) == 0
    printed = capsys.readouterr().out
    assert "mean return" in printed and str(out) in printed
    report = AdaptationReport.load(out)
    assert report.num_tasks == 2 and report.steps == [0, 1] and report.family == "Navigation2D-v0"
    assert report.label == "mine"
    assert report.info["checkpoint"].endswith("iter_000000.safetensors")
    # The default report path, and a second learner's report in CSV, plotted together.
    assert main(["evaluate", str(tmp_path / "run"), "--num-tasks", "3", "--episodes", "2"]) == 0
    default = tmp_path / "run" / "evaluation" / "test-iter000000-seed0.json"
    assert default.is_file()
    # A step-size schedule goes to a report of its own, beside the default one.
    args = ["evaluate", str(tmp_path / "run"), "--num-tasks", "2", "--episodes", "2"]
    assert main([*args, "--step-sizes", "0.5", "0.25"]) == 0
    scheduled = default.with_name("test-iter000000-seed0-lr0.5-0.25.json")
    assert AdaptationReport.load(scheduled).info["inner_step_sizes"] == [0.5, 0.25]
    other = hand_report(learner="reptile").save(tmp_path / "reptile.csv")
    png = tmp_path / "curves.png"
    assert main(["plot", str(out), str(other), "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Bad input: a clear error, exit status 2.
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "no run directory or checkpoint" in capsys.readouterr().err


def test_plot_one_panel_per_family(tmp_path):
    import matplotlib.image

    wide = plot_reports(
        [hand_report(), hand_report(family="HalfCheetahVel-v0", tasks=[{}, {}])],
        tmp_path / "two.png",
    )
    narrow = plot_reports([hand_report()], tmp_path / "one.png")
    assert matplotlib.image.imread(wide).shape[1] > 1.5 * matplotlib.image.imread(narrow).shape[1]
    with pytest.raises(ValueError, match="at least one report"):
        plot_reports([], tmp_path / "none.png")


def test_reports_that_share_a_label_are_told_apart_in_the_legend():
    """Two seeds of one run (same label): the legend names each training seed; the same
    run evaluated twice: the evaluation seed and step sizes; otherwise a number."""
    from metarl.evaluation.plot import _distinct_labels

    seeds = [hand_report(info={"config": {"seed": s}}) for s in (0, 1)]
    assert _distinct_labels(seeds) == [f"{seeds[0].label}, seed {s}" for s in (0, 1)]
    twice = [
        hand_report(info={"config": {"seed": 0}}),
        hand_report(info={"config": {"seed": 0}, "inner_step_sizes": [0.1, 0.05]}, seed=4),
    ]
    label = twice[0].label
    assert _distinct_labels(twice) == [
        f"{label}, evaluation seed 3",
        f"{label}, evaluation seed 4, step sizes 0.1/0.05",
    ]
    assert _distinct_labels([hand_report(), hand_report()]) == [f"{label}, #1", f"{label}, #2"]
    other = hand_report(label="other")
    assert _distinct_labels([hand_report(), other]) == [label, "other"]


def test_metarl_export_and_evaluate_with_video(tmp_path, capsys):
    """`metarl export` writes a model SB3 loads, acting as our policy does; `evaluate --video`
    films a task before and after adaptation."""
    import imageio.v3 as iio
    from stable_baselines3 import PPO

    config = metarl.MAMLTRPOConfig(
        family="HalfCheetahVel-v0", meta_batch_size=1, fast_batch_size=1, hidden_sizes=(8,)
    )
    with metarl.MAMLTRPO(config, run_dir=tmp_path / "run") as learner:
        runs.write_checkpoint(learner)
        obs = torch.as_tensor(np.random.default_rng(0).normal(size=(5, 17)), dtype=torch.float32)
        mean, _ = learner.policy(obs)
    model_path = tmp_path / "model.zip"
    assert main(["export", str(tmp_path / "run"), "--format", "sb3", "-o", str(model_path)]) == 0
    model = PPO.load(model_path, device="cpu")
    actions, _ = model.predict(obs.numpy(), deterministic=True)
    np.testing.assert_array_equal(actions, np.clip(mean.detach().numpy(), -1, 1))
    adapted_path = tmp_path / "adapted.zip"
    task = ["--task", '{"velocity": 1.5}', "--episodes", "1"]
    assert main(["export", str(tmp_path / "run"), "-o", str(adapted_path), *task]) == 0
    assert "adapted to" in capsys.readouterr().out
    adapted = PPO.load(adapted_path, device="cpu").predict(obs.numpy(), deterministic=True)[0]
    assert not np.array_equal(adapted, actions)
    assert main(["export", str(tmp_path / "run"), "-o", "x.zip", "--task", "{velocity"]) == 2
    assert "--task must be a JSON dict" in capsys.readouterr().err

    videos = tmp_path / "videos"
    args = ["evaluate", str(tmp_path / "run"), "--num-tasks", "1", "--episodes", "1"]
    assert main([*args, "--steps", "1", "--video", str(videos), "--video-tasks", "1"]) == 0
    (video,) = videos.iterdir()
    assert video.name == "task_00.gif"
    frames = iio.imread(video, index=None)
    assert frames.shape[0] > 10 and frames.shape[2] == 2 * 320  # before | after


def test_a_report_records_the_library_versions_it_was_measured_with():
    import mujoco

    config = metarl.MAMLTRPOConfig(
        family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=2, hidden_sizes=(8,),
        num_workers=0,
    )  # fmt: skip
    with metarl.MAMLTRPO(config) as learner:
        report = metarl.evaluate(learner, "test", steps=0, episodes=1, num_tasks=1)
    assert report.info["versions"]["mujoco"] == mujoco.__version__
    assert set(report.info["versions"]) >= {"metarl", "numpy", "torch", "gymnasium"}
