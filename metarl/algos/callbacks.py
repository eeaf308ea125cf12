"""Hooks into :meth:`MetaLearner.train`, in the manner of Stable-Baselines3's callbacks.

A callback sees the learner when training starts, after every meta-iteration (with that
iteration's statistics, which it may extend: what it adds is logged with the iteration) and
when training ends. Returning ``False`` from :meth:`Callback.on_iteration_end` stops training
after that iteration (it is still logged and checkpointed)::

    from metarl.algos.callbacks import StopTrainingOnReturn
    from metarl.evaluation.callbacks import EvaluationCallback

    learner.train(500, callback=[
        EvaluationCallback(every=50, num_tasks=10, episodes=10),  # held-out curve every 50
        StopTrainingOnReturn(150.0),                              # stop once adapted >= 150
    ])

Built in: :class:`StopTrainingOnReturn`, and (with evaluation, where callbacks that
evaluate live) :class:`metarl.evaluation.callbacks.EvaluationCallback`: held-out adaptation
curves during training, logged and saved, with the best iteration kept as
``checkpoints/best.safetensors``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metarl.algos.base import MetaLearner


class Callback:
    """Override any of the three hooks; each does nothing by default."""

    def on_training_start(self, learner: MetaLearner) -> None:
        """Called once when :meth:`MetaLearner.train` starts (also after a resume)."""

    def on_iteration_end(self, learner: MetaLearner, stats: dict[str, Any]) -> bool | None:
        """Called after each meta-iteration, before it is logged and checkpointed.

        ``learner.iteration`` is the iteration just finished; ``stats`` its statistics, to
        which the callback may add numbers (they go to ``progress.csv`` and TensorBoard).
        Return ``False`` to stop training after this iteration; anything else continues.
        """
        return True

    def on_training_end(self, learner: MetaLearner) -> None:
        """Called once when :meth:`MetaLearner.train` returns (stopped early or not)."""


class CallbackList(Callback):
    """Several callbacks, called in order; training stops if any of them asks to."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be metarl Callback instances, got {type(callback).__name__}"
                )
        self.callbacks = list(callbacks)

    def on_training_start(self, learner: MetaLearner) -> None:
        for callback in self.callbacks:
            callback.on_training_start(learner)

    def on_iteration_end(self, learner: MetaLearner, stats: dict[str, Any]) -> bool:
        answers = [callback.on_iteration_end(learner, stats) for callback in self.callbacks]
        return all(answer is not False for answer in answers)

    def on_training_end(self, learner: MetaLearner) -> None:
        for callback in self.callbacks:
            callback.on_training_end(learner)


def as_callback(callback: Callback | Sequence[Callback] | None) -> Callback:
    """One callback for ``train``'s ``callback`` argument: a callback, a list of them, or None."""
    if callback is None:
        return Callback()
    if isinstance(callback, Callback):
        return callback
    if isinstance(callback, Sequence) and not isinstance(callback, (str, bytes)):
        return CallbackList(callback)
    raise TypeError(
        f"callback must be a metarl Callback, a list of them, or None; got "
        f"{type(callback).__name__}"
    )


class StopTrainingOnReturn(Callback):
    """Stop training once ``stats[key]`` reaches ``threshold``.

    Args:
        threshold: the return to reach.
        key: the statistic to watch: ``return_after`` (the training batch after adaptation,
            default), ``return_before``, or one an earlier callback adds, such as
            ``heldout/return_step_3`` from an :class:`EvaluationCallback` listed before this.
    """

    def __init__(self, threshold: float, key: str = "return_after") -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        self.threshold = float(threshold)
        self.key = key

    def on_iteration_end(self, learner: MetaLearner, stats: dict[str, Any]) -> bool:
        value = stats.get(self.key)
        if value is None:
            if self.key.startswith("heldout/"):
                return True  # not measured this iteration (an evaluation every N iterations)
            raise KeyError(
                f"StopTrainingOnReturn watches {self.key!r}, which this learner does not log; "
                f"its statistics are: {sorted(stats)}"
            )
        return not value >= self.threshold
