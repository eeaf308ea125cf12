"""Bad input gets one clear error, in bounded time and memory: config files (YAML alias
bombs, oversized files, values that would disable training or overflow), ``--set``, task
files (deep nesting, strings and bools for numbers, empty dicts, too many tasks), actions,
seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metarl.algos.config import MAX_CONFIG_BYTES, config_from_dict, read_config_file
from metarl.algos.maml_trpo import MAMLTRPOConfig
from metarl.algos.reptile import ReptileConfig
from metarl.cli import main
from metarl.evaluation.tasks import load_task_file, resolve_tasks
from metarl.registry import make_family

#: "Billion laughs": nine levels of nine aliases, 384 bytes that expand to 9**9 values.
ALIAS_BOMB = "algorithm: maml_trpo\n" + "\n".join(
    ["a0: &a0 [lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["hidden_sizes: *a8"]
)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    with pytest.raises(ValueError, match=r"alias \*a0; a config takes no YAML aliases"):
        read_config_file(path)
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "takes no YAML aliases" in err and len(err) < 1000
    assert main(["baseline", "random-init", "--config", str(path)]) == 2
    assert main(["train", "--set", "hidden_sizes=[&x 8, *x]"]) == 2
    assert "takes no YAML aliases" in capsys.readouterr().err


def test_an_oversized_config_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("algorithm: maml_trpo\n# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ValueError, match="too large for a config"):
        read_config_file(path)


def test_error_messages_show_a_bounded_excerpt_of_a_huge_value():
    huge = list(range(10**6))
    with pytest.raises(ValueError) as caught:
        config_from_dict(MAMLTRPOConfig, {"family": huge})
    assert "'family' must be str" in str(caught.value) and len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("cls", "key", "value", "message"),
    [
        (MAMLTRPOConfig, "max_kl", math.inf, "'max_kl' must be a finite number"),
        (MAMLTRPOConfig, "cg_damping", math.nan, "'cg_damping' must be a finite number"),
        (MAMLTRPOConfig, "cg_damping", -1, "cg_damping must be >= 0"),
        (MAMLTRPOConfig, "ls_max_steps", 0, "ls_max_steps must be >= 1"),
        (MAMLTRPOConfig, "ls_max_steps", -5, "ls_max_steps must be >= 1"),
        (MAMLTRPOConfig, "inner_lr", math.inf, "'inner_lr' must be a finite number"),
        (MAMLTRPOConfig, "inner_lr", 10**400, "'inner_lr' must be a finite number"),
        (MAMLTRPOConfig, "init_std", -1.0, "init_std must be a finite number > 0"),
        (MAMLTRPOConfig, "seed", 2**64, "'seed' must be an int below 2\\*\\*63"),
        (MAMLTRPOConfig, "hidden_sizes", [8, 2**70], "'hidden_sizes' must be"),
        (ReptileConfig, "meta_step_size", math.nan, "'meta_step_size' must be a finite number"),
        (ReptileConfig, "inner_lr", -math.inf, "'inner_lr' must be a finite number"),
    ],
)
def test_config_values_that_would_disable_training_are_refused(cls, key, value, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(cls, {key: value}, "a.yaml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('[{"goal": ["0.1", "0.2"]}]', "goal must be numeric .* not strings or bools"),
        ('[{"goal": [false, false]}]', "goal must be numeric .* not strings or bools"),
        ("[{}]", r"task 0: it gives no value for \['goal'\]"),
        ('[{"goal": [0.1, 0.2]}]', None),
        ("[" + ", ".join(['{"goal": [0.1, 0.2]}'] * 100_000) + "]", "100,000 tasks is more"),
    ],
)
def test_a_bad_task_file_gets_one_clear_error(tmp_path, content, message):
    family = make_family("Navigation2D-v0")
    path = tmp_path / "tasks.json"
    path.write_text(content)
    if message is None:
        assert load_task_file(family, path) == [family.make_task(goal=[0.1, 0.2])]
        return
    with pytest.raises(ValueError, match=message) as caught:
        load_task_file(family, path)
    assert len(str(caught.value)) < 400
    with pytest.raises(ValueError, match="more than one evaluation takes"):
        resolve_tasks(family, "test", num_tasks=10**5)


def test_actions_must_be_numbers_and_a_huge_finite_action_is_clipped():
    family = make_family("HalfCheetahVel-v0")
    env = family.make_env(family.default_task())
    env.reset(seed=0)
    for action in (["0.1"] * 6, [True] * 6, "0.5"):
        with pytest.raises(ValueError, match="is not numeric"):
            env.step(action)
    env.step(np.full(6, 1.7e308))  # finite: clipped to the action space, not "non-finite"
    with pytest.raises(ValueError, match="non-finite action"):
        env.step(np.array([np.nan, 0, 0, 0, 0, 0]))
    env.close()


def test_a_seed_past_64_bits_is_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "run", "--seed", str(2**64)])
    assert "--seed: must be an int in [0, 2**63)" in capsys.readouterr().err
