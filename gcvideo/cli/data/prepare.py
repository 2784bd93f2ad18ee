"""``gcvideo data prepare``: re-encode a downloaded dataset for fast training decoding (same tree, new root)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
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


def run(args: argparse.Namespace) -> int:
    from gcvideo.data.preparation.reencode import prepare_dataset

    s = prepare_dataset(args.root, args.out, short_side=args.short_side, gop=args.gop, crf=args.crf,
                        preset=args.preset, tune=args.tune, workers=args.workers)
    failed = f"copied unchanged, listed in {s['failed_list']}" if s["failed"] else "none"
    speed = f"; {s['seconds_per_video']:.2f} s per video with {s['workers']} workers" if s["done"] else ""
    print(f"{s['out']}: {s['videos']} videos, {s['done']} re-encoded now, {s['skipped']} already there, "
          f"{s['failed']} failed ({failed}){speed}")
    return 0
