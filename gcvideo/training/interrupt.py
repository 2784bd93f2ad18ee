"""Ctrl-C during ``fit``: keep the work done so far and say how to go on, in one line.

Lightning turns a KeyboardInterrupt into a graceful shutdown (its ``on_exception`` hooks, then
``sys.exit(1)``), but the partial epoch is lost: the last checkpoint is that of the last finished epoch. This
callback saves the run's state at the moment of the interrupt as the run folder's ``last.ckpt``.
Lightning (2.x) records the loops' progress inside the epoch, so ``--ckpt_path last`` resumes from the
interrupted step, with the same optimizer and scheduler state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from gcvideo.training.run_folder import LAST


class SaveOnInterrupt(Callback):
    """On KeyboardInterrupt during fit, write ``<checkpoint dir>/last.ckpt`` and print one line.

    ``interrupted`` tells the caller (the command line) to exit with status 130, as a shell does.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.saved: Path | None = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):
            return
        self.interrupted = True
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        checkpoint = trainer.checkpoint_callback
        if trainer.state.fn != "fit" or trainer.fast_dev_run or checkpoint is None or checkpoint.dirpath is None:
            if trainer.is_global_zero:
                print(f"gcvideo: interrupted ({trainer.state.fn}, {where})", file=sys.stderr, flush=True)
            return
        self.saved = Path(checkpoint.dirpath) / LAST
        checkpoint.last_model_path = str(self.saved)  # recorded in the state: a resumed run overwrites it
        if trainer.is_global_zero:
            # Written by rank 0 alone, without the barrier of trainer.save_checkpoint: the other processes
            # are shutting down too and may never reach it. Temporary file + rename: a second kill while
            # writing must not destroy the last.ckpt already there.
            state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            self.saved.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.saved.with_name(f".{LAST}.tmp")
            trainer.strategy.checkpoint_io.save_checkpoint(state, tmp)
            os.replace(tmp, self.saved)
            print(f"gcvideo fit: interrupted at {where}; saved {self.saved}; resume with --ckpt_path last",
                  file=sys.stderr, flush=True)
