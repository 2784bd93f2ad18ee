"""``gcvideo data check``: every listed video checked in parallel, into a resumable manifest.

Each video is decoded in order by a child process (``gcvideo.data.decoding.video_check``), which is killed and replaced
when it runs past the timeout (decoders can hang on damaged files). Rows go to
``OUT/<split>.manifest.csv`` as they arrive, flushed one by one: an interrupted run keeps what it did,
and a rerun checks only the videos without a row (or whose file changed since). At the end come
``OUT/<split>.clean.csv`` (same format as the source for Kinetics CSVs, else ``path label`` lines) and
``OUT/<split>.bad.csv`` with the reasons. ``OUT`` is ``root/annotations`` unless ``--out`` says
otherwise (for read-only datasets). Datasets read the manifest found next to their list.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import signal
import tempfile
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path
from typing import Sequence

from gcvideo.data.annotations import KINETICS_HEADER, load_class_names, resolve_split
from gcvideo.data.decoding.manifest import ManifestRow, ManifestWriter, file_stamp, manifest_path, read_rows
from gcvideo.errors import UserError
from gcvideo.progress import progress_bar


def default_workers() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _worker(conn, backends: Sequence[str] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the workers
    from gcvideo.data.decoding.video_check import check_video

    while True:
        task = conn.recv()
        if task is None:
            return
        index, path, relative = task
        try:
            row = check_video(path, relative, backends)
        except Exception as e:  # noqa: BLE001  (anything else is also a bad file, not a crash of the run)
            row = ManifestRow(relative, "bad", f"error: {type(e).__name__}: {e}", size=file_stamp(path)[0])
        conn.send((index, row))


class _Pool:
    """Worker processes fed one video at a time; one past the timeout or dead is replaced."""

    def __init__(self, workers: int, backends: Sequence[str] | None) -> None:
        # not "fork": a child forked from a process whose torch/FFmpeg thread pools are running can hang in
        # them; a fork server that imported the decoders before any work starts workers quickly and clean
        if "forkserver" in mp.get_all_start_methods():
            self.ctx = mp.get_context("forkserver")
            self.ctx.set_forkserver_preload(["gcvideo.data.decoding.video_check"])
        else:
            self.ctx = mp.get_context("spawn")
        self.backends = backends
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> dict:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.backends), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "task": None, "since": 0.0}

    def restart(self, i: int) -> None:
        self.slots[i]["proc"].kill()
        self.slots[i]["proc"].join()
        self.slots[i]["conn"].close()
        self.slots[i] = self._start()

    def close(self, kill: bool = False) -> None:
        for slot in self.slots:
            if slot["task"] is None and not kill:
                slot["conn"].send(None)
            else:
                slot["proc"].kill()
            slot["proc"].join(timeout=5)


def check_videos(jobs: Sequence[tuple[str, str]], writer: ManifestWriter | None = None, *, workers: int = 2,
                 timeout: float = 60.0, backends: Sequence[str] | None = None, progress: bool = True,
                 done_before: int = 0) -> list[ManifestRow]:
    """Manifest rows of ``jobs`` ((path, relative path) pairs), each written to ``writer`` as it arrives.

    No job starts no worker: a split checked in full before costs no decoder process.
    """
    if not jobs:
        return []
    rows: list[ManifestRow | None] = [None] * len(jobs)
    pool = _Pool(max(1, min(workers, len(jobs) or 1)), backends)
    todo = list(range(len(jobs)))[::-1]
    bar = progress_bar(total=len(jobs) + done_before, initial=done_before, desc="checking videos", unit="video",
               disable=not progress, dynamic_ncols=True)
    bad = 0

    def finish(index: int, row: ManifestRow) -> None:
        nonlocal bad
        rows[index] = row
        if writer is not None:
            writer.write(row)
        bad += row.status == "bad"
        bar.update()
        bar.set_postfix(bad=bad, refresh=False)

    interrupted = True
    try:
        while todo or any(s["task"] is not None for s in pool.slots):
            for slot in pool.slots:
                if slot["task"] is None and todo:
                    slot["task"], slot["since"] = todo.pop(), time.monotonic()
                    slot["conn"].send((slot["task"], *jobs[slot["task"]]))
            busy = [s["conn"] for s in pool.slots if s["task"] is not None]
            for conn in wait(busy, timeout=0.1):
                slot = next(s for s in pool.slots if s["conn"] is conn)
                index = slot["task"]
                try:
                    _, row = conn.recv()
                except EOFError:  # the worker died (e.g. a crash inside a decoder)
                    path, relative = jobs[index]
                    row = ManifestRow(relative, "bad", "crashed: the decoder died", size=file_stamp(path)[0],
                                      mtime=file_stamp(path)[1])
                    pool.restart(pool.slots.index(slot))
                slot["task"] = None  # (after a restart, the slot is a fresh idle worker already)
                finish(index, row)
            for i, slot in enumerate(pool.slots):
                if slot["task"] is not None and time.monotonic() - slot["since"] > timeout:
                    path, relative = jobs[slot["task"]]
                    size, mtime = file_stamp(path)
                    row = ManifestRow(relative, "bad", f"timeout: no result after {timeout:g} s", size=size,
                                      mtime=mtime)
                    index = slot["task"]
                    pool.restart(i)
                    finish(index, row)
        interrupted = False
    finally:
        pool.close(kill=interrupted)
        bar.close()
    return rows  # type: ignore[return-value]


def _writable_folder(out: Path) -> None:
    """Create ``out`` and write a file there now, so a read-only place fails before the work, not after."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".gcvideo-write-test"):
            pass
    except OSError as e:
        raise UserError(f"cannot write the check's results to {out} ({e.strerror or e}): "
                        f"give a writable folder with --out DIR") from None


def _replace_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        write(f)
    os.replace(tmp, path)


def reason_kind(row: ManifestRow, min_frames: int) -> str:
    """"" for a usable video, else the category of the reason (missing, empty, undecodable, too short, ...)."""
    if row.status == "bad":
        return row.reason.split(":")[0] or "bad"
    return "too short" if row.info.frames < min_frames else ""


def check_split(root: str | os.PathLike, split: str, *, out: str | os.PathLike | None = None,
                workers: int | None = None, timeout: float = 60.0, backends: Sequence[str] | None = None,
                min_frames: int = 1, class_names_file: str | None = None, annotation_format: str = "auto",
                progress: bool = True) -> dict:
    """Check a split (resuming from its manifest) and write its clean and bad lists; returns a summary."""
    root = Path(root)
    out = Path(out) if out is not None else root / "annotations"
    names = load_class_names(root, class_names_file)
    records, fmt, source = resolve_split(root, split, names, annotation_format=annotation_format)
    _writable_folder(out)
    manifest = manifest_path(out, split)
    relative = [Path(os.path.relpath(r.path, root)).as_posix() for r in records]
    known: dict[str, ManifestRow] = {}
    if manifest.is_file():
        for values in read_rows(manifest):
            known[values["path"]] = ManifestRow.from_csv(values)
    rows: dict[str, ManifestRow] = {}
    pending: dict[str, tuple[str, str]] = {}  # a video listed twice is checked once
    for record, rel in zip(records, relative):
        row = known.get(rel)
        if row is not None and (row.size, row.mtime) == file_stamp(record.path):
            rows[rel] = row
        else:
            pending.setdefault(rel, (record.path, rel))
    jobs = list(pending.values())
    resumed = len(rows)
    with ManifestWriter(manifest) as writer:
        for row in check_videos(jobs, writer, workers=workers or default_workers(), timeout=timeout,
                                backends=backends, progress=progress, done_before=resumed):
            rows[row.path] = row
    clean_path, bad_path = out / f"{split}.clean.csv", out / f"{split}.bad.csv"
    kinds = {rel: reason_kind(rows[rel], min_frames) for rel in rows}

    def write_clean(f) -> None:
        if fmt == "kinetics":
            csv.writer(f).writerow(KINETICS_HEADER)
        for record, rel in zip(records, relative):
            if not kinds[rel]:
                if fmt == "kinetics":
                    csv.writer(f).writerow(list(record.row[:5]))
                else:
                    f.write(f"{rel} {record.label}\n")

    def write_bad(f) -> None:
        writer = csv.writer(f)
        writer.writerow([*KINETICS_HEADER, "reason"] if fmt == "kinetics" else ["path", "label", "reason"])
        for record, rel in zip(records, relative):
            if kinds[rel]:
                row = list(record.row[:5]) if fmt == "kinetics" else [rel, str(record.label)]
                reason = rows[rel].reason if kinds[rel] != "too short" else \
                    f"too short: {rows[rel].info.frames} < {min_frames} frames"
                writer.writerow([*row, reason])

    _replace_write(clean_path, write_clean)
    _replace_write(bad_path, write_bad)
    videos = [rows[rel] for rel in relative]
    usable = [r for r, rel in zip(videos, relative) if not kinds[rel]]
    return {"split": split, "source": source, "format": fmt, "videos": len(records), "checked": len(jobs),
            "resumed": resumed, "clean": len(usable), "bad": len(records) - len(usable),
            "partial": sum(r.status == "partial" for r in usable),
            "reasons": dict(Counter(kinds[rel] for rel in relative if kinds[rel])),
            "backends": dict(Counter(r.info.backend for r in usable)),
            "clean_list": str(clean_path), "bad_list": str(bad_path), "manifest": str(manifest),
            "root": str(root), "default_out": out == root / "annotations"}
