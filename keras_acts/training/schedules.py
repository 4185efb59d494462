"""Learning-rate schedules of the papers' recipes: linear warm-up followed by a
cosine or linear decay, as a serializable Keras ``LearningRateSchedule``.

Example:
    >>> lr = WarmupDecay(0.1, total_steps=1000, warmup_steps=50, decay="cosine")
    >>> [round(float(lr(step)), 6) for step in (0, 25, 50, 1000)]
    [0.0, 0.05, 0.1, 0.0]
"""

import math

import keras
import tensorflow as tf

DECAYS = ("cosine", "linear", "constant")


@keras.saving.register_keras_serializable(package="keras_acts")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``base_lr * step / warmup_steps`` for the first ``warmup_steps`` steps, then
    a ``decay`` ("cosine", "linear" or "constant") from ``base_lr`` to ``end_lr``
    at ``total_steps`` (held at ``end_lr`` after it).

    Example:
        >>> sched = WarmupDecay(0.4, total_steps=100, warmup_steps=10, decay="linear")
        >>> round(float(sched(55)), 6)
        0.2
        >>> optimizer = keras.optimizers.SGD(sched, momentum=0.9)
    """

    def __init__(self, base_lr, total_steps, warmup_steps=0, decay="cosine", end_lr=0.0):
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}; received {decay!r}.")
        if total_steps <= 0 or warmup_steps < 0:
            raise ValueError("total_steps must be > 0 and warmup_steps >= 0; received "
                             f"total_steps={total_steps}, warmup_steps={warmup_steps}.")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.end_lr = float(end_lr)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base, end = self.base_lr, self.end_lr
        warm = float(max(self.warmup_steps, 1))
        span = float(max(self.total_steps - self.warmup_steps, 1))
        frac = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            decayed = end + (base - end) * 0.5 * (1.0 + tf.cos(math.pi * frac))
        elif self.decay == "linear":
            decayed = base + (end - base) * frac
        else:
            decayed = tf.constant(base, tf.float32) + 0.0 * frac
        if self.warmup_steps == 0:
            return decayed
        return tf.where(step < self.warmup_steps, base * step / warm, decayed)

    def get_config(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay,
                "end_lr": self.end_lr}


def scaled_learning_rate(lr_per_256, global_batch_size):
    """Linear scaling rule (Goyal et al.): ``lr_per_256 * global_batch_size / 256``.

    Example:
        >>> scaled_learning_rate(0.1, 1024)
        0.4
    """
    return float(lr_per_256) * global_batch_size / 256.0
