"""``gcvideo data bench|prepare|make-bench-videos``: measure and speed up the input pipeline (issue 9).

    gcvideo data make-bench-videos --out datasets/bench340 --size 340x256     # Kinetics-like files
    gcvideo data bench --root datasets/bench340 --mode training --json bench.json
    gcvideo data prepare --root /data/k400 --out /data/k400_320 --workers 16
"""

from __future__ import annotations

import argparse
import json


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 340x256, got {text!r}") from None
    return w, h


def add_parsers(sub) -> None:
    """Add the three subcommands to ``gcvideo data``'s subparsers."""
    bench = sub.add_parser("bench", help="clips/s per worker of the data pipelines (see --mode)")
    bench.add_argument("--root", required=True, help="dataset folder (Kinetics layout, lists or class folders)")
    bench.add_argument("--mode", choices=("pipelines", "training"), default="pipelines",
                       help="pipelines: train/val clips per backend against pytorchvideo (default); training: what one "
                            "DataLoader worker delivers, today's pipeline next to each speed-up lever and their "
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

    prepare = sub.add_parser("prepare", help="re-encode a dataset for fast training decoding (same tree, new root)")
    prepare.add_argument("--root", required=True, help="the dataset as downloaded")
    prepare.add_argument("--out", required=True, help="new root (the same tree; resumable: finished files are kept)")
    prepare.add_argument("--short-side", type=int, default=320,
                         help="short side of the copies, never upscaled (default 320, the recipe's largest jitter)")
    prepare.add_argument("--gop", type=int, default=32, help="frames between keyframes (default 32)")
    prepare.add_argument("--crf", type=int, default=23, help="x264 constant rate factor, lower = better (default 23)")
    prepare.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    prepare.add_argument("--tune", default="fastdecode", help="x264 tune, '' for none (default fastdecode)")
    prepare.add_argument("--workers", type=int, default=None, help="parallel encoders (default: all CPUs)")

    make = sub.add_parser("make-bench-videos", help="write Kinetics-like videos (H.264 High, B-frames, GOP 250, "
                                                    "30 fps, 10 s, AAC) in the Kinetics layout, to benchmark with")
    make.add_argument("--out", required=True, help="output folder")
    make.add_argument("--size", type=_size, default=(340, 256), help="WxH, e.g. 340x256 or 1280x720 (default 340x256)")
    make.add_argument("--videos", type=int, default=16, help="training videos (default 16)")
    make.add_argument("--val-videos", type=int, default=2, help="validation videos (default 2)")
    make.add_argument("--classes", type=int, default=4, help="classes, assigned in turn (default 4)")
    make.add_argument("--seconds", type=float, default=10.0, help="length (default 10)")
    make.add_argument("--gop", type=int, default=250, help="frames between keyframes (default 250, as on YouTube)")
    make.add_argument("--preset", default="medium", help="x264 preset (default medium; veryfast writes ~3x faster)")
    make.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPUs)")


def run(args: argparse.Namespace) -> int:
    if args.action == "make-bench-videos":
        from gcvideo.data.kinetics_like import write_kinetics_like_dataset

        out = write_kinetics_like_dataset(args.out, size=args.size, videos=args.videos, val_videos=args.val_videos,
                                          classes=args.classes, seconds=args.seconds, gop=args.gop,
                                          preset=args.preset, workers=args.workers)
        print(f"Kinetics-like videos ready in {out}")
        return 0
    if args.action == "prepare":
        from gcvideo.data.prepare import prepare_dataset

        s = prepare_dataset(args.root, args.out, short_side=args.short_side, gop=args.gop, crf=args.crf,
                            preset=args.preset, tune=args.tune, workers=args.workers)
        failed = f"copied unchanged, listed in {s['failed_list']}" if s["failed"] else "none"
        speed = f"; {s['seconds_per_video']:.2f} s per video with {s['workers']} workers" if s["done"] else ""
        print(f"{s['out']}: {s['videos']} videos, {s['done']} re-encoded now, {s['skipped']} already there, "
              f"{s['failed']} failed ({failed}){speed}")
        return 0
    if args.mode == "training":
        from gcvideo.data.bench_workers import bench_training, format_training

        results = bench_training(args.root, args.split or "train", clips=args.clips or 48, batch_size=args.batch_size,
                                 videos=args.videos, clips_per_video=args.clips_per_video,
                                 prepare=not args.no_prepare, repeats=args.repeats, frames=args.frames,
                                 stride=args.stride, short_side=tuple(args.train_short_side), crop=args.train_crop)
        text = format_training(results)
    else:
        from gcvideo.data.bench import bench, format_bench

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
