"""Kinetics-400 at full size on a laptop: build a 280k-row tree of hard links and measure the data side.

The tree has Kinetics-400's shape (400 classes; train 240k, val 20k, test 20k rows in the official CSV
layout, plus a 240k-row ``path label`` list with class names), but every video is a hard link to one of
8 tiny real videos, so it costs directory entries, not disk space. Some val/test files carry the
other extensions yt-dlp writes (.webm, .mkv) and a few val rows have no file at all.

Measured (each in a fresh child process, so one measure does not warm the next):
  - ``parse``: seconds to read the path-label list and the train CSV, and to build the data module's
    train + val + test datasets (``setup``);
  - ``memory``: USS and PSS of the main process and of each DataLoader worker after the first batch and
    after ``--items`` training items (tiny decodes), i.e. whether workers copy the annotations as they
    read them.

    PYTHONPATH=$PWD python scripts/bench_scale.py --root /tmp/gcvideo_k400_tree
    PYTHONPATH=$PWD python scripts/bench_scale.py --root /tmp/gcvideo_k400_tree --only memory --workers 4

Compare with another checkout by pointing PYTHONPATH at it (the script uses only KineticsDataModule and
resolve_split). The figures measured with it are in docs/benchmarks.md. Do not commit the tree; it is
rebuilt in about a minute.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"train": 600, "val": 50, "test": 50}  # rows per class (x 400 classes)
OTHER_EXTENSIONS = (".webm", ".mkv")  # every 8th val/test row is one of these
MISSING_EVERY = 500  # every 500th val row has no file


def build_tree(root: Path) -> None:
    """Write the tree (see the module docstring) unless ``root/done.json`` says it is complete."""
    import numpy as np

    from gcvideo.data.annotations import kinetics400_class_names
    from gcvideo.data.annotations import KINETICS_HEADER
    from gcvideo.data.synthetic.videos import write_mp4

    if (root / "done.json").is_file():
        return
    if root.exists():  # an interrupted build: start again
        import shutil

        shutil.rmtree(root)
    t0 = time.perf_counter()
    names = kinetics400_class_names()
    sources = root / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    videos = []
    for k in range(8):  # 16 frames of 32x32 (8 sources: ext4 allows 65,000 links per file)
        path = sources / f"v{k}.mp4"
        write_mp4(path, rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), 8)
        videos.append(path)
    (root / "annotations").mkdir(exist_ok=True)
    (root / "classnames.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    row = 0
    with open(root / "train_names.txt", "w", encoding="utf-8") as listing:
        for split, per_class in SIZES.items():
            with open(root / "annotations" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(KINETICS_HEADER)
                for label in names:
                    folder = root / "videos" / split / label
                    folder.mkdir(parents=True, exist_ok=True)
                    for i in range(per_class):
                        youtube_id = f"{row:011d}"
                        start = 10 * (i % 30)
                        ext = OTHER_EXTENSIONS[row % 2] if split != "train" and i % 8 == 7 else ".mp4"
                        name = f"{youtube_id}_{start:06d}_{start + 10:06d}"
                        writer.writerow([label, youtube_id, start, start + 10, split])
                        if not (split == "val" and row % MISSING_EVERY == 0):
                            os.link(videos[row % len(videos)], folder / (name + ext))
                        if split == "train":
                            listing.write(f"videos/train/{label}/{name}.mp4 {label}\n")
                        row += 1
    (root / "done.json").write_text(json.dumps({"rows": row, "seconds": time.perf_counter() - t0}))


def measure_parse(root: Path) -> dict:
    from gcvideo.data import KineticsDataModule
    from gcvideo.data.annotations import load_class_names, resolve_split

    names = load_class_names(root)
    out = {"rss after imports (MiB)": _memory(os.getpid())["rss"]}
    t0 = time.perf_counter()
    listed, _, _ = resolve_split(root, "train", names, list_file=root / "train_names.txt")
    out["path-label list with names, 240k rows (s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table, _, _ = resolve_split(root, "train", names)
    out["official CSV, 240k rows (s)"] = time.perf_counter() - t0
    assert len(listed) == len(table) == 400 * SIZES["train"]
    t0 = time.perf_counter()
    data = KineticsDataModule(str(root), num_workers=0)
    data.setup()
    out["data module: train + val + test datasets (s)"] = time.perf_counter() - t0
    out["rss after building (MiB)"] = _memory(os.getpid())["rss"]
    table = getattr(data.train_dataset, "table", None)  # VideoTable (absent in a checkout without one)
    if table is not None:
        out["train VideoTable (MiB)"] = table.nbytes / 2**20
    return out


def _memory(pid: int) -> dict[str, float]:
    """USS (private pages), PSS and RSS of a process in MiB, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) / 1024
    return {"uss": fields["Private_Clean"] + fields["Private_Dirty"], "pss": fields["Pss"], "rss": fields["Rss"]}


def measure_memory(root: Path, workers: int, items: int) -> dict:
    import torch

    from gcvideo.data import KineticsDataModule

    torch.manual_seed(0)
    data = KineticsDataModule(str(root), frames=2, stride=1, train_short_side=(16, 16), train_crop=16,
                              batch_size=32, num_workers=workers)
    data.setup("fit")
    loader = iter(data.train_dataloader())
    next(loader)
    items = min(items, (len(loader) - 1) * 32)  # at most the rest of one epoch (``--items`` past it: a full epoch)
    pids = {"main": os.getpid(), **{f"worker {i}": w.pid for i, w in enumerate(loader._workers)}}
    start = {name: _memory(pid) for name, pid in pids.items()}
    t0 = time.perf_counter()
    for _ in range(items // 32):
        next(loader)
    seconds = time.perf_counter() - t0
    end = {name: _memory(pid) for name, pid in pids.items()}
    return {"workers": workers, "items": items, "items per s": items / seconds,
            "MiB (uss, pss) at start -> after": {
                name: f"uss {start[name]['uss']:.0f} -> {end[name]['uss']:.0f}, "
                      f"pss {start[name]['pss']:.0f} -> {end[name]['pss']:.0f}" for name in pids}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/gcvideo_k400_tree"))
    parser.add_argument("--only", choices=("build", "parse", "memory"), default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--items", type=int, default=20000, help="training items read between the two measures (at most the rest of one epoch)")
    args = parser.parse_args()
    if args.only is None:  # each measure in its own process
        for part in ("build", "parse", "memory"):
            cmd = [sys.executable, __file__, "--root", str(args.root), "--only", part, "--workers",
                   str(args.workers), "--items", str(args.items)]
            subprocess.run(cmd, check=True)
        return
    if args.only == "build":
        build_tree(args.root)
        print(json.dumps({"tree": str(args.root), **json.loads((args.root / "done.json").read_text())}))
    elif args.only == "parse":
        print(json.dumps(measure_parse(args.root), indent=1))
    else:
        print(json.dumps(measure_memory(args.root, args.workers, args.items), indent=1))


if __name__ == "__main__":
    main()
