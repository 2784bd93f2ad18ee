"""Half-cosine learning rate with linear warm-up: the SlowFast 8x8 recipe (SlowFast, arXiv 1812.03982, Sec. 4
"Training" and the appendix's Kinetics details), with which the Kinetics rows of GCNet (arXiv 1904.11492,
Sec. 5.3) are trained here.

As in PySlowFast (``slowfast/utils/lr_policy.py``): with base rate ``b`` (the optimizer's ``lr``) and
``E = max_epochs``, ``lr(e) = end + (b - end) * (1 + cos(pi * e / E)) / 2`` for ``e >= warmup_epochs``;
before that, the rate rises linearly from ``warmup_start_factor * b`` to ``lr(warmup_epochs)``.
``e`` is a fractional epoch: the rate changes every optimizer step once the LightningModule has told
the scheduler the number of steps per epoch (``set_steps_per_epoch``); until then it changes per epoch.

The run's length has one source of truth, the trainer's ``max_epochs``: ``Classifier`` passes it to
``set_max_epochs`` (and the command line checks it before any process starts), so a config states the
number of epochs once.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from gcvideo.errors import UserError


def check_epochs(max_epochs: float | None, warmup_epochs: float) -> None:
    """Raise UserError unless ``0 <= warmup_epochs < max_epochs``, saying which setting to change."""
    if max_epochs is None or max_epochs <= 0:
        raise UserError(f"the learning-rate schedule needs the run's length: set trainer.max_epochs "
                        f"(got {max_epochs})")
    if not 0 <= warmup_epochs < max_epochs:
        raise UserError(f"warm-up of {warmup_epochs:g} epochs does not fit a run of {max_epochs:g} epochs: "
                        f"lower model.lr_scheduler.init_args.warmup_epochs or raise trainer.max_epochs")


class WarmupCosineLR(LRScheduler):
    """Linear warm-up then half-cosine decay over the whole run, stepped per optimizer step.

    Args:
        optimizer: the wrapped optimizer; its ``lr`` is the peak (base) rate.
        max_epochs: length of the half-cosine, in epochs (196 in the recipe). Leave it out under
            Lightning: ``Classifier`` sets it from ``trainer.max_epochs``. Given, it must equal that.
        warmup_epochs: length of the linear warm-up (34 in the recipe); 0 disables it.
        warmup_start_factor: warm-up start rate as a fraction of the base rate (0.1: 0.01 for lr 0.1).
        end_lr: final rate of the cosine (0 in the recipe).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_epochs: float | None = None,
        warmup_epochs: float = 0.0,
        warmup_start_factor: float = 0.1,
        end_lr: float = 0.0,
        last_epoch: int = -1,
    ):
        if warmup_epochs < 0:
            raise UserError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if max_epochs is not None:
            check_epochs(max_epochs, warmup_epochs)
        if warmup_start_factor < 0:
            raise UserError(f"warmup_start_factor must be >= 0, got {warmup_start_factor}")
        self.max_epochs = None if max_epochs is None else float(max_epochs)
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_start_factor = float(warmup_start_factor)
        self.end_lr = float(end_lr)
        self.steps_per_epoch = 1
        super().__init__(optimizer, last_epoch)

    def set_max_epochs(self, epochs: float) -> None:
        """The run's length in epochs (the trainer's ``max_epochs``; called by the LightningModule)."""
        if self.max_epochs is not None and self.max_epochs != float(epochs):
            raise UserError(f"model.lr_scheduler.init_args.max_epochs ({self.max_epochs:g}) differs from "
                            f"trainer.max_epochs ({epochs}): remove the scheduler's, it follows the trainer")
        check_epochs(epochs, self.warmup_epochs)
        self.max_epochs = float(epochs)

    def set_steps_per_epoch(self, steps: int) -> None:
        """Step the rate every optimizer step instead of every epoch (called by the LightningModule)."""
        if steps < 1:
            raise ValueError(f"steps per epoch must be >= 1, got {steps}")
        self.steps_per_epoch = int(steps)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the position in the schedule; the run's length set for this run is kept.

        Lightning restores a resumed run's scheduler after ``configure_optimizers`` has set the length
        from this run's trainer, which stays the one source of truth (e.g. when a run is extended).
        """
        length = (self.max_epochs, self.steps_per_epoch)
        super().load_state_dict(state_dict)
        if length[0] is not None:
            self.max_epochs, self.steps_per_epoch = length

    def _cosine(self, base: float, epoch: float) -> float:
        epoch = min(epoch, self.max_epochs)
        return self.end_lr + (base - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / self.max_epochs))

    def lr_at(self, base: float, epoch: float) -> float:
        """Learning rate at fractional ``epoch`` for base rate ``base``."""
        if self.max_epochs is None:
            if epoch > 0:
                raise RuntimeError("WarmupCosineLR: the run's length is unknown; pass max_epochs or call "
                                   "set_max_epochs (Classifier does, from trainer.max_epochs)")
            # the first rate does not depend on the length: the warm-up start, or the peak without warm-up
            return self.warmup_start_factor * base if self.warmup_epochs > 0 else base
        if epoch < self.warmup_epochs:
            start = self.warmup_start_factor * base
            end = self._cosine(base, self.warmup_epochs)
            return start + (end - start) * epoch / self.warmup_epochs
        return self._cosine(base, epoch)

    def get_lr(self) -> list[float]:
        epoch = self.last_epoch / self.steps_per_epoch
        return [self.lr_at(base, epoch) for base in self.base_lrs]
