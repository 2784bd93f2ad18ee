"""Half-cosine learning rate with linear warm-up: the SlowFast 8x8 recipe (PAPER.md, "Recipe").

As in PySlowFast (``slowfast/utils/lr_policy.py``): with base rate ``b`` (the optimizer's ``lr``) and
``E = max_epochs``, ``lr(e) = end + (b - end) * (1 + cos(pi * e / E)) / 2`` for ``e >= warmup_epochs``;
before that, the rate rises linearly from ``warmup_start_factor * b`` to ``lr(warmup_epochs)``.
``e`` is a fractional epoch: the rate changes every optimizer step once the LightningModule has told
the scheduler the number of steps per epoch (``set_steps_per_epoch``); until then it changes per epoch.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class WarmupCosineLR(LRScheduler):
    """Linear warm-up then half-cosine decay over the whole run, stepped per optimizer step.

    Args:
        optimizer: the wrapped optimizer; its ``lr`` is the peak (base) rate.
        max_epochs: length of the half-cosine, in epochs (196 in the recipe).
        warmup_epochs: length of the linear warm-up (34 in the recipe); 0 disables it.
        warmup_start_factor: warm-up start rate as a fraction of the base rate (0.1: 0.01 for lr 0.1).
        end_lr: final rate of the cosine (0 in the recipe).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_epochs: float,
        warmup_epochs: float = 0.0,
        warmup_start_factor: float = 0.1,
        end_lr: float = 0.0,
        last_epoch: int = -1,
    ):
        if max_epochs <= 0 or not 0 <= warmup_epochs < max_epochs:
            raise ValueError(f"need 0 <= warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}")
        if warmup_start_factor < 0:
            raise ValueError(f"warmup_start_factor must be >= 0, got {warmup_start_factor}")
        self.max_epochs = float(max_epochs)
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_start_factor = float(warmup_start_factor)
        self.end_lr = float(end_lr)
        self.steps_per_epoch = 1
        super().__init__(optimizer, last_epoch)

    def set_steps_per_epoch(self, steps: int) -> None:
        """Step the rate every optimizer step instead of every epoch (called by the LightningModule)."""
        if steps < 1:
            raise ValueError(f"steps per epoch must be >= 1, got {steps}")
        self.steps_per_epoch = int(steps)

    def _cosine(self, base: float, epoch: float) -> float:
        epoch = min(epoch, self.max_epochs)
        return self.end_lr + (base - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / self.max_epochs))

    def lr_at(self, base: float, epoch: float) -> float:
        """Learning rate at fractional ``epoch`` for base rate ``base``."""
        if epoch < self.warmup_epochs:
            start = self.warmup_start_factor * base
            end = self._cosine(base, self.warmup_epochs)
            return start + (end - start) * epoch / self.warmup_epochs
        return self._cosine(base, epoch)

    def get_lr(self) -> list[float]:
        epoch = self.last_epoch / self.steps_per_epoch
        return [self.lr_at(base, epoch) for base in self.base_lrs]
