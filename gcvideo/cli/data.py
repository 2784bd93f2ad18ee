"""``gcvideo data check|bench``: find unreadable videos, or time the clip pipelines (issue 3)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="decode every listed video; write <split>.clean.csv and <split>.bad.csv")
    check.add_argument("--root", required=True)
    check.add_argument("--split", default="train")
    check.add_argument("--workers", type=int, default=2)
    check.add_argument("--timeout", type=float, default=60.0, help="seconds per video before it counts as bad")
    check.add_argument("--decoder", default="decord", choices=("decord", "pyav"))
    check.add_argument("--min-frames", type=int, default=1, help="videos with fewer frames count as bad")
    check.add_argument("--class-names-file", default=None)
    bench = sub.add_parser("bench", help="clips/s per worker of the train/val pipelines vs pytorchvideo")
    bench.add_argument("--root", required=True)
    bench.add_argument("--split", default="val")
    bench.add_argument("--clips", type=int, default=20)
    bench.add_argument("--frames", type=int, default=8)
    bench.add_argument("--stride", type=int, default=8)
    bench.add_argument("--train-short-side", type=int, nargs=2, default=(256, 320))
    bench.add_argument("--train-crop", type=int, default=224)
    bench.add_argument("--val-short-side", type=int, default=256)
    bench.add_argument("--val-crop", type=int, default=224)


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        from gcvideo.data.check import check_split

        summary = check_split(args.root, args.split, workers=args.workers, timeout=args.timeout,
                              backend=args.decoder, min_frames=args.min_frames, class_names_file=args.class_names_file)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["reasons"].items())) or "none"
        print(f"{summary['split']}: {summary['videos']} videos ({summary['format']}: {summary['source']}), "
              f"{summary['clean']} clean, {summary['bad']} bad (reasons: {reasons})")
        print(f"clean list: {summary['clean_list']}\nbad list:   {summary['bad_list']}")
        return 0
    from gcvideo.data.bench import bench, format_bench

    results = bench(args.root, args.split, args.clips, frames=args.frames, stride=args.stride,
                    train_short_side=tuple(args.train_short_side), train_crop=args.train_crop,
                    val_short_side=args.val_short_side, val_crop=args.val_crop)
    print(format_bench(results))
    return 0
