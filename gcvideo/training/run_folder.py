"""One run per run folder, and ``--ckpt_path last`` always means this run's latest state.

A run folder (``trainer.default_root_dir``) holds ``checkpoints/`` (with exactly one ``last.ckpt``),
``logs/version_N/`` (one per command: each resume and each test adds one) and ``test/``. A ``fit``
that does not resume the folder's own run is refused while the folder holds checkpoints: Lightning
would otherwise write ``last-v1.ckpt`` beside the existing ``last.ckpt``, and a later ``--ckpt_path last``
would pick whichever is newer, possibly a one-batch smoke test.
"""

from __future__ import annotations

import os
from pathlib import Path

from gcvideo.errors import UserError

LAST = "last.ckpt"


def run_folder(default_root_dir: str | None) -> str:
    """The run folder: ``trainer.default_root_dir``, or the working directory as Lightning defaults."""
    return default_root_dir or os.getcwd()


def checkpoint_dir(default_root_dir: str | None) -> str:
    """Fixed (unversioned) checkpoint folder under the run folder, so ``--ckpt_path last`` finds it."""
    return os.path.join(run_folder(default_root_dir), "checkpoints")


def checkpoints_in(checkpoint_dir: str | Path) -> list[Path]:
    """The ``.ckpt`` files directly in ``checkpoint_dir``, oldest first."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob("*.ckpt") if p.is_file()), key=lambda p: p.stat().st_mtime)


def checkpoint_position(path: str | Path) -> str:
    """``epoch 3, step 225`` as recorded in a Lightning checkpoint (epochs counted from 0, as Lightning)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  (only for a message: an unreadable file is reported as such)
        return "unreadable"
    return f"epoch {ckpt.get('epoch', '?')}, step {ckpt.get('global_step', '?')}"


def resolve_resume(ckpt_path: str | None, checkpoint_dir: str | Path) -> str | None:
    """``fit``'s ``--ckpt_path``: ``last`` is this run folder's ``last.ckpt`` (None when there is none yet)."""
    if ckpt_path != "last":
        return ckpt_path
    last = Path(checkpoint_dir) / LAST
    return str(last) if last.is_file() else None


def check_new_or_resumed(run_dir: str | Path, checkpoint_dir: str | Path, resume_from: str | None) -> None:
    """Refuse a ``fit`` into a folder that holds another run's checkpoints.

    Allowed: a folder without checkpoints (a new run), or resuming from a checkpoint of this folder.

    Raises:
        UserError: naming the run found and the ways out.
    """
    found = checkpoints_in(checkpoint_dir)
    if not found:
        return
    if resume_from is not None and Path(resume_from).resolve().parent == Path(checkpoint_dir).resolve():
        return
    last = Path(checkpoint_dir) / LAST
    shown = last if last.is_file() else found[-1]
    raise UserError(f"{run_dir} already holds a run ({shown.name}: {checkpoint_position(shown)}): resume it with "
                    f"--ckpt_path last, or start a new run in another --trainer.default_root_dir "
                    f"(or delete {checkpoint_dir})")
