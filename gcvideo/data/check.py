"""``gcvideo data check``: decode every listed video in a child process with a timeout (issue 3).

decord can hang on files that over-report their frame count, so each video is decoded by a worker
process that is killed (and replaced) when it runs past the timeout. Results: ``annotations/<split>.clean.csv``
(same format as the source for Kinetics CSVs, else ``path label`` lines relative to the root) and
``annotations/<split>.bad.csv`` with the reason; point the data module at the clean list with
``list_suffix=".clean"``.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path

from tqdm import tqdm

from gcvideo.data.annotations import KINETICS_HEADER, load_class_names, resolve_split


def _worker(conn, backend: str, min_frames: int) -> None:
    from gcvideo.data.decoding import DecodeError, count_frames

    while True:
        task = conn.recv()
        if task is None:
            return
        index, path = task
        try:
            n = count_frames(path, backend)
            reason = "" if n >= min_frames else f"too short: {n} < {min_frames} frames"
        except DecodeError as e:
            reason = f"{e.reason}: {e.detail}" if e.detail else e.reason
        except Exception as e:  # noqa: BLE001  (anything else is also a bad file, not a crash)
            reason = f"error: {type(e).__name__}: {e}"
        conn.send((index, reason))


class _Pool:
    def __init__(self, workers: int, backend: str, min_frames: int) -> None:
        self.ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.args = backend, min_frames
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> dict:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "task": None, "since": 0.0}

    def restart(self, i: int) -> None:
        self.slots[i]["proc"].kill()
        self.slots[i]["proc"].join()
        self.slots[i]["conn"].close()
        self.slots[i] = self._start()

    def close(self) -> None:
        for slot in self.slots:
            if slot["task"] is None:
                slot["conn"].send(None)
            else:
                slot["proc"].kill()
            slot["proc"].join(timeout=5)


def check_videos(paths: list[str], *, workers: int = 2, timeout: float = 60.0, backend: str = "decord",
                 min_frames: int = 1, progress: bool = True) -> list[str]:
    """Reason each video is bad ("" when it decodes fully with at least ``min_frames`` frames)."""
    reasons: list[str | None] = [None] * len(paths)
    pool = _Pool(max(1, min(workers, len(paths) or 1)), backend, min_frames)
    todo = list(range(len(paths)))[::-1]
    bar = tqdm(total=len(paths), desc="checking videos", unit="video", disable=not progress)
    try:
        while todo or any(s["task"] is not None for s in pool.slots):
            for slot in pool.slots:
                if slot["task"] is None and todo:
                    slot["task"], slot["since"] = todo.pop(), time.monotonic()
                    slot["conn"].send((slot["task"], paths[slot["task"]]))
            busy = [s["conn"] for s in pool.slots if s["task"] is not None]
            for conn in wait(busy, timeout=0.1):
                slot = next(s for s in pool.slots if s["conn"] is conn)
                try:
                    index, reason = conn.recv()
                except EOFError:  # the worker died (e.g. a crash inside a decoder)
                    index, reason = slot["task"], "crashed the decoder"
                    pool.restart(pool.slots.index(slot))
                reasons[index] = reason
                slot["task"] = None  # (after a restart, the slot is a fresh idle worker already)
                bar.update()
            for i, slot in enumerate(pool.slots):
                if slot["task"] is not None and time.monotonic() - slot["since"] > timeout:
                    reasons[slot["task"]] = f"timeout: no result after {timeout:g} s"
                    pool.restart(i)
                    bar.update()
    finally:
        pool.close()
        bar.close()
    return [r or "" for r in reasons]


def check_split(root: str | os.PathLike, split: str, *, workers: int = 2, timeout: float = 60.0,
                backend: str = "decord", min_frames: int = 1, class_names_file: str | None = None,
                annotation_format: str = "auto", progress: bool = True) -> dict:
    """Check a split and write its clean and bad lists; returns a summary dict."""
    root = Path(root)
    names = load_class_names(root, class_names_file)
    records, fmt, source = resolve_split(root, split, names, annotation_format=annotation_format)
    reasons = check_videos([r.path for r in records], workers=workers, timeout=timeout, backend=backend,
                           min_frames=min_frames, progress=progress)
    (root / "annotations").mkdir(exist_ok=True)
    clean_path, bad_path = root / "annotations" / f"{split}.clean.csv", root / "annotations" / f"{split}.bad.csv"
    with open(clean_path, "w", newline="", encoding="utf-8") as fc, open(bad_path, "w", newline="", encoding="utf-8") as fb:
        bad_writer = csv.writer(fb)
        if fmt == "kinetics":
            clean_writer = csv.writer(fc)
            clean_writer.writerow(KINETICS_HEADER)
            bad_writer.writerow([*KINETICS_HEADER, "reason"])
        else:
            bad_writer.writerow(["path", "label", "reason"])
        for record, reason in zip(records, reasons):
            rel = os.path.relpath(record.path, root)
            row = list(record.row[:5]) if fmt == "kinetics" else [rel, str(record.label)]
            if reason:
                bad_writer.writerow([*row, reason])
            elif fmt == "kinetics":
                clean_writer.writerow(row)
            else:
                fc.write(f"{rel} {record.label}\n")
    kinds = Counter(r.split(":")[0] for r in reasons if r)
    return {"split": split, "source": source, "format": fmt, "videos": len(records),
            "clean": sum(1 for r in reasons if not r), "bad": sum(1 for r in reasons if r), "reasons": dict(kinds),
            "clean_list": str(clean_path), "bad_list": str(bad_path)}
