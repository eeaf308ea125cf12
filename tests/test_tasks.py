"""Tasks, parameters, distributions and the TaskFamily sampling/validation contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

import metarl
from metarl import Choice, Disk, LogUniform, Parameter, Task, Uniform
from tests.conftest import BUNDLED_IDS, some_tasks

# ---------------------------------------------------------------------------- distributions


def test_distributions_sample_inside_their_support():
    rng = np.random.default_rng(0)
    for dist, shape in [
        (Uniform(-1.0, 2.0), (50,)),
        (LogUniform(1.5, -3, 3), (50, 3)),
        (Disk(3.0), (2,)),
    ]:
        for _ in range(200):
            assert dist.contains(dist.sample(rng, shape))
    log = LogUniform(1.5, -3, 3)
    assert log.min_value == pytest.approx(1.5**-3) and log.max_value == 3.375
    assert not log.contains(3.5) and not log.contains(0.29)
    assert not Disk(3.0).contains([2.5, 2.5]) and Disk(3.0).contains([0.0, -3.0])
    choice = Choice([(0,), (1, 2)])
    assert choice.contains([1, 2]) and not choice.contains([2, 1]) and not choice.contains(3)


def test_disk_is_uniform_by_area():
    rng = np.random.default_rng(1)
    radii = np.array([np.linalg.norm(Disk(3.0).sample(rng, (2,))) for _ in range(20000)])
    # Half the area lies within radius 3/sqrt(2).
    assert np.mean(radii < 3.0 / np.sqrt(2)) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Uniform(1.0, 1.0),
        lambda: Uniform(0.0, np.inf),
        lambda: LogUniform(1.0, -1, 1),
        lambda: Disk(-1.0),
        lambda: Choice([]),
        lambda: Choice([1, 1]),
    ],
)
def test_malformed_distributions_raise(make):
    with pytest.raises(ValueError):
        make()


# ---------------------------------------------------------------------------- parameters


def test_parameter_validation_messages_say_what_is_allowed():
    p = Parameter("velocity", "target", Uniform(0, 2), default=1.0, ood=Uniform(2, 3))
    assert p.validate(2.5) == 2.5
    with pytest.raises(ValueError, match=r"velocity=3.5 is out of range: expected U\(0, 2\)"):
        p.validate(3.5)
    with pytest.raises(ValueError, match="must be finite"):
        p.validate(float("nan"))
    with pytest.raises(ValueError, match="must be numeric"):
        p.validate("fast")
    with pytest.raises(ValueError, match="must be numeric"):
        p.validate(True)
    with pytest.raises(ValueError, match=r"must have shape \(\)"):
        p.validate([1.0, 1.0])
    vec = Parameter("goal", "goal", Uniform(-1, 1), default=(0, 0), shape=(2,))
    assert vec.validate(np.array([0.5, -0.5])) == (0.5, -0.5)
    with pytest.raises(ValueError, match="default"):
        Parameter("x", "x", Uniform(0, 1), default=5.0)
    with pytest.raises(ValueError, match="identifier"):
        Parameter("not a name", "x", Uniform(0, 1), default=0.5)


# ---------------------------------------------------------------------------- tasks


def test_task_is_frozen_hashable_and_json_round_trips():
    family = metarl.make_family("HalfCheetahRandParams-v0")
    task = family.sample_tasks(1, np.random.default_rng(0))[0]
    assert {task: 1}[task] == 1
    with pytest.raises(AttributeError, match="immutable"):
        task.velocity = 2.0
    text = json.dumps(task.to_dict())
    again = family.task_from_dict(json.loads(text))
    assert again == task and hash(again) == hash(task)
    assert isinstance(task.to_dict()["body_inertia_scale"][0], list)
    assert task.family == "HalfCheetahRandParams-v0"
    assert "body_mass_scale" in repr(task)
    with pytest.raises(KeyError, match="has no parameter 'mass'"):
        task["mass"]


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_every_family_round_trips_its_tasks_through_json(families, family_id):
    family = families[family_id]
    tasks = some_tasks(family, 3) + family.test_tasks(3)
    if family.has_ood:
        tasks += family.ood_tasks(3)
    for task in tasks:
        assert family.task_from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_task_from_dict_rejects_unknown_keys_and_out_of_range_values(families):
    family = families["HalfCheetahVel-v0"]
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['speed'\].*\['velocity'\]"):
        family.task_from_dict({"speed": 1.0})
    with pytest.raises(ValueError, match=r"HalfCheetahVel-v0: velocity=-1.0 is out of range"):
        family.task_from_dict({"velocity": -1.0})
    with pytest.raises(ValueError, match="must be a dict"):
        family.task_from_dict([1.0])
    assert family.task_from_dict({"velocity": 2.5}).velocity == 2.5  # OOD values are valid
    assert family.task_from_dict({}) == family.default_task()
    legs = families["AntCrippledLeg-v0"]
    assert legs.task_from_dict({"crippled_legs": [1, 3]}).crippled_legs == (1, 3)
    with pytest.raises(ValueError, match="direction must be one of .*got the bool True"):
        families["HalfCheetahDir-v0"].task_from_dict({"direction": True})
    with pytest.raises(ValueError, match=r"crippled_legs=\[4\] is not allowed: expected one of"):
        legs.task_from_dict({"crippled_legs": [4]})
    rand = families["HopperRandParams-v0"]
    with pytest.raises(ValueError, match=r"body_mass_scale must have shape \(4,\)"):
        rand.task_from_dict({"body_mass_scale": [1.0, 1.0]})
    with pytest.raises(ValueError, match=r"body_mass_scale=array with values in \[1, 5\]"):
        rand.task_from_dict({"body_mass_scale": [1.0, 1.0, 1.0, 5.0]})


def test_make_env_rejects_foreign_and_invalid_tasks(families):
    cheetah, ant = families["HalfCheetahVel-v0"], families["AntVel-v0"]
    with pytest.raises(ValueError, match="belongs to family AntVel-v0, not HalfCheetahVel-v0"):
        cheetah.make_env(ant.default_task())
    with pytest.raises(TypeError, match="expected a metarl Task"):
        cheetah.make_env({"velocity": 1.0})
    forged = Task("HalfCheetahVel-v0", {"velocity": 99.0})
    with pytest.raises(ValueError, match="out of range"):
        cheetah.make_env(forged)
    with pytest.raises(TypeError, match="could not build the env"):
        cheetah.make_env(cheetah.default_task(), not_a_kwarg=1)


# ---------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_sample_tasks_is_reproducible_and_in_distribution(families, family_id):
    family = families[family_id]
    a = family.sample_tasks(20, np.random.default_rng(42))
    b = family.sample_tasks(20, np.random.default_rng(42))
    assert a == b
    assert family.sample_tasks(5, np.random.default_rng(42)) == a[:5]
    c = family.sample_tasks(20, np.random.default_rng(43))
    assert a != c
    for task in a:
        for p in family.parameters:
            assert p.distribution.contains(task[p.name])


@pytest.mark.parametrize("family_id", BUNDLED_IDS)
def test_test_tasks_are_fixed_and_disjoint_from_training(families, family_id):
    family = families[family_id]
    test = family.test_tasks()
    assert len(test) == 40
    assert test == metarl.make_family(family_id).test_tasks(40)
    assert family.test_tasks(10) == test[:10]
    discrete = all(p.is_choice for p in family.parameters)
    if not discrete:  # a continuous family never redraws a held-out task
        train = family.sample_tasks(1000, np.random.default_rng(0))
        assert set(test).isdisjoint(train)
        assert len(set(test)) == 40


def test_held_out_sets_are_pinned():
    """The held-out sets must be identical on every machine and in every release."""
    cheetah = metarl.make_family("HalfCheetahVel-v0")
    assert [t.velocity for t in cheetah.test_tasks(2)] == [0.4939268375375927, 1.5989073103344906]
    assert cheetah.ood_tasks(1)[0].velocity == 2.185943276824762
    nav = metarl.make_family("Navigation2D-v0")
    assert nav.test_tasks(1)[0].goal == (-0.10116672320583076, 0.20464590006747596)
    legs = metarl.make_family("AntCrippledLeg-v0")
    assert [t.crippled_legs for t in legs.test_tasks(4)] == [(1,), (1,), (2,), (0,)]
    assert [t.crippled_legs for t in legs.ood_tasks(3)] == [(0, 1), (3,), (3,)]
    joints = metarl.make_family("HalfCheetahCrippledJoint-v0")
    assert [(t.crippled_joints, t.strength) for t in joints.test_tasks(2)] == [
        ((4,), 0.28223932372148164),
        ((2,), 0.16338642541332807),
    ]
    assert joints.ood_tasks(1)[0].crippled_joints == (1, 3)
    motors = metarl.make_family("HalfCheetahReversedJoints-v0")
    assert [t.reversed_joints for t in motors.test_tasks(3)] == [(1, 3, 4, 5), (0, 1, 3, 5), (0,)]
    assert [t.reversed_joints for t in motors.ood_tasks(2)] == [(0, 3, 5), (0, 4, 5)]


def test_ood_tasks_lie_in_the_ood_range(families):
    for family_id in ("HalfCheetahVel-v0", "AntCrippledLeg-v0"):
        family = families[family_id]
        (param,) = family.parameters
        ood = family.ood_tasks(30)
        assert all(param.ood.contains(t[param.name]) for t in ood)
        assert not any(param.distribution.contains(t[param.name]) for t in ood)
    assert {t.crippled_legs for t in families["AntCrippledLeg-v0"].ood_tasks(200)} == set(
        families["AntCrippledLeg-v0"].parameters[0].ood.values
    )
    with pytest.raises(ValueError, match="no out-of-distribution range"):
        families["AntVel-v0"].ood_tasks(3)


def test_sample_tasks_rejects_bad_arguments(families):
    family = families["Navigation2D-v0"]
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        family.sample_tasks(3, 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        family.sample_tasks(3, np.random.RandomState(0))
    with pytest.raises(ValueError, match="n must be >= 0"):
        family.sample_tasks(-1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="n must be an int"):
        family.test_tasks(2.5)
    assert family.sample_tasks(0, np.random.default_rng(0)) == []
