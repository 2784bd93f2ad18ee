"""DDP training without a GPU synchronisation at every step for Lightning's SIGTERM check.

Lightning 2.6 broadcasts a "SIGTERM received" flag from rank 0 before every training batch and reads it
with ``.item()`` so that all ranks stop together
(https://github.com/Lightning-AI/pytorch-lightning/pull/20825), which makes the CPU wait for the GPU at
every step (https://github.com/Lightning-AI/pytorch-lightning/issues/21487): the next batch's hand-off and
kernel launches then run with the GPU idle. ``SigtermBroadcastEvery`` makes that broadcast happen once
every ``every_n_steps`` batches, by default the logging interval, whose logger read synchronises anyway
(https://github.com/Lightning-AI/pytorch-lightning/pull/21640 proposes the same as a Trainer option).
Every rank counts the same batches, so the collective calls still pair up; a SIGTERM is acted on at most
``every_n_steps - 1`` batches later, well inside a scheduler's grace period.
"""

from __future__ import annotations

import lightning as L


class SigtermBroadcastEvery(L.Callback):
    """Broadcast Lightning's SIGTERM flag every ``every_n_steps`` training batches instead of every batch.

    Args:
        every_n_steps: batches between two broadcasts; None: the trainer's ``log_every_n_steps``.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.every = 1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        loop = trainer.fit_loop.epoch_loop
        broadcast = getattr(type(loop), "_broadcast_sigterm_tensor", None)
        self.every = self.every_n_steps or max(1, trainer.log_every_n_steps or 1)
        if stage != "fit" or broadcast is None or self.every == 1:  # a Lightning without it: nothing to do
            return
        every = self.every

        def broadcast_every_n() -> None:
            if (loop.total_batch_idx + 1) % every == 0:  # the batches started before this one: equal on all ranks
                broadcast(loop)

        loop._broadcast_sigterm_tensor = broadcast_every_n

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        trainer.fit_loop.epoch_loop.__dict__.pop("_broadcast_sigterm_tensor", None)
