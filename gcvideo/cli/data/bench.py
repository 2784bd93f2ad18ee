"""``gcvideo data bench``: clips per second of the clip pipelines, or of one DataLoader worker with each
input-pipeline lever (``--mode training``)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="clips/s per worker of the data pipelines (see --mode)")
    bench.add_argument("--root", required=True, help="dataset folder (Kinetics layout, lists or class folders)")
    bench.add_argument("--mode", choices=("pipelines", "training"), default="pipelines",
                       help="pipelines: train/val clips per backend against pytorchvideo (default); training: what one "
                            "DataLoader worker delivers, the baseline pipeline next to each speed-up lever and their "
                            "combinations")
    bench.add_argument("--split", default=None, help="split to read (default: val for pipelines, train for training)")
    bench.add_argument("--clips", type=int, default=None,
                       help="clips timed per pipeline (default: 20 for pipelines, 48 for training)")
    bench.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    bench.add_argument("--stride", type=int, default=8, help="step between the frames of a clip (default 8)")
    bench.add_argument("--train-short-side", type=int, nargs=2, default=(256, 320), metavar=("LO", "HI"),
                       help="short-side jitter range of training clips (default 256 320)")
    bench.add_argument("--train-crop", type=int, default=224, help="training crop (default 224)")
    bench.add_argument("--val-short-side", type=int, default=256, help="validation short side (default 256)")
    bench.add_argument("--val-crop", type=int, default=224, help="validation centre crop (default 224)")
    bench.add_argument("--batch-size", type=int, default=8, help="training: clips per collated batch (default 8)")
    bench.add_argument("--videos", type=int, default=16, help="training: first videos of the split used (default 16)")
    bench.add_argument("--clips-per-video", type=int, default=2,
                       help="training: k of the clips_per_video rows (default 2)")
    bench.add_argument("--repeats", type=int, default=3, help="training: interleaved rounds, median kept (default 3)")
    bench.add_argument("--no-prepare", action="store_true",
                       help="training: skip the rows on copies made by `gcvideo data prepare`'s encoder")
    bench.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON to FILE")


def run(args: argparse.Namespace) -> int:
    if args.mode == "training":
        from gcvideo.data.bench.workers import bench_training, format_training

        results = bench_training(args.root, args.split or "train", clips=args.clips or 48, batch_size=args.batch_size,
                                 videos=args.videos, clips_per_video=args.clips_per_video,
                                 prepare=not args.no_prepare, repeats=args.repeats, frames=args.frames,
                                 stride=args.stride, short_side=tuple(args.train_short_side), crop=args.train_crop)
        text = format_training(results)
    else:
        from gcvideo.data.bench.pipelines import bench, format_bench

        results = bench(args.root, args.split or "val", args.clips or 20, frames=args.frames, stride=args.stride,
                        train_short_side=tuple(args.train_short_side), train_crop=args.train_crop,
                        val_short_side=args.val_short_side, val_crop=args.val_crop)
        text = format_bench(results)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0
