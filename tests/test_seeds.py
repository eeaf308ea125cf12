"""The named seed streams (metarl.seeds): their values are what every committed result,
checkpoint and resume was drawn with, so a change to any key shows here first."""

import numpy as np

from metarl import seeds


def first_word(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1)[0])


#: seeds.rl2_minibatches(7, 3), as first drawn (2026-12-07).
RL2_MINIBATCHES_7_3 = 7471784904358943816
#: seeds.action_noise(noise of sampler_batch(7), 3), as first drawn (2026-12-07).
ACTION_NOISE_7 = [455633984350938918, 2687421588078949316, 3288707347835310907]


def test_every_stream_keeps_the_key_results_were_drawn_with():
    # Values computed from the keys as they were before the streams moved to metarl.seeds.
    assert first_word(seeds.named("metarl/test/HalfCheetahVel-v0")) == 1795473807
    assert first_word(seeds.learner_tasks(7)) == 3618983171
    assert seeds.reptile_minibatches(7, iteration=3) == 1684239238610986860
    assert seeds.reptile_minibatches(7) == 9139555415570476218
    assert seeds.rl2_minibatches(7, 3) == RL2_MINIBATCHES_7_3
    assert first_word(seeds.sampler_call(7, 3)) == 3842200183
    assert first_word(seeds.sampler_batch(7)) == 2083679832
    resets, noise = seeds.batch_streams(seeds.sampler_batch(7))
    assert resets.generate_state(2).tolist() == [1201125462, 788422957]
    assert noise == 2021251017632032385
    assert seeds.action_noise(noise, 3).tolist() == ACTION_NOISE_7
    assert seeds.evaluation_step(7, 2) == 1009178997
    assert first_word(seeds.task_env_draws(7)) == 369571992
    assert first_word(seeds.vec_env_tasks(7, 3)) == 2234724314
    assert seeds.vec_env_reset(7, 3, 5) == 253126822
    assert seeds.finetune_task(7, 3) == 10
    assert first_word(seeds.train_tasks(7)) == first_word(np.random.SeedSequence(7))
    assert seeds.policy_init(7) == 7


def consumed(seed: int, k: int, i: int) -> dict[str, list[np.random.SeedSequence]]:
    """Each stream's sequences that something draws from (``generate_state``) at position
    ``k`` (a call, a step, an env or an iteration) and ``i`` (a task or an episode)."""
    sequence = np.random.SeedSequence
    return {
        "learner_tasks(s)": [seeds.learner_tasks(seed)],
        f"sampler_call(s, {k})": list(seeds.sampler_call(seed, k).spawn(2)),
        "sampler_batch(s)": list(seeds.sampler_batch(seed).spawn(2)),
        f"evaluation_step(s, {k})": [sequence((seed, k))],
        "reptile_minibatches(s)": [sequence((seed, 2))],
        f"reptile_minibatches(s, iteration={k})": [sequence((seed, 2, k))],
        f"rl2_minibatches(s, {k})": [sequence((seed, 3, k + 1))],
        "task_env_draws(s)": [seeds.task_env_draws(seed)],
        "train_tasks(s)": [seeds.train_tasks(seed)],
        f"vec_env_tasks(s, {k})": [seeds.vec_env_tasks(seed, k)],
        f"vec_env_reset(s, {k}, {i})": [sequence(seed, spawn_key=(k, 1, i))],
    }


def test_streams_share_a_sequence_only_where_the_module_says_so():
    for seed in (0, 5):
        users: dict[int, set[str]] = {}
        for k in range(3):
            for i in range(3):
                for name, sequences in consumed(seed, k, i).items():
                    for sequence in sequences:
                        users.setdefault(int(sequence.generate_state(1)[0]), set()).add(name)
        reptile_first = "reptile_minibatches(s, iteration=0)"
        shared = sorted(sorted(names) for names in users.values() if len(names) > 1)
        assert shared == sorted(
            [
                ["evaluation_step(s, 1)", "task_env_draws(s)"],
                ["evaluation_step(s, 0)", "train_tasks(s)"],
                ["evaluation_step(s, 2)", "reptile_minibatches(s)", reptile_first],
                ["learner_tasks(s)", "sampler_batch(s)"],
                *[[f"sampler_call(s, {k})", f"vec_env_tasks(s, {k})"] for k in range(3)],
            ]
        )
