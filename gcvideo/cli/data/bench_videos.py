"""``gcvideo data make-bench-videos``: Kinetics-like files (H.264 High, B-frames, GOP 250, 30 fps, AAC) in
the Kinetics layout, to measure the input pipeline on files encoded as downloads are."""

from __future__ import annotations

import argparse

from gcvideo.cli.argument_types import frame_size


def add_parser(sub) -> None:
    make = sub.add_parser("make-bench-videos", help="write Kinetics-like videos (H.264 High, B-frames, GOP 250, "
                                                    "30 fps, 10 s, AAC) in the Kinetics layout, to benchmark with")
    make.add_argument("--out", required=True, help="output folder")
    make.add_argument("--size", type=frame_size, default=(340, 256), help="WxH, e.g. 340x256 or 1280x720 (default 340x256)")
    make.add_argument("--videos", type=int, default=16, help="training videos (default 16)")
    make.add_argument("--val-videos", type=int, default=2, help="validation videos (default 2)")
    make.add_argument("--classes", type=int, default=4, help="classes, assigned in turn (default 4)")
    make.add_argument("--seconds", type=float, default=10.0, help="length (default 10)")
    make.add_argument("--gop", type=int, default=250, help="frames between keyframes (default 250, as on YouTube)")
    make.add_argument("--preset", default="medium", help="x264 preset (default medium; veryfast writes ~3x faster)")
    make.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPUs)")


def run(args: argparse.Namespace) -> int:
    from gcvideo.data.synthetic.kinetics_like import write_kinetics_like_dataset

    out = write_kinetics_like_dataset(args.out, size=args.size, videos=args.videos, val_videos=args.val_videos,
                                      classes=args.classes, seconds=args.seconds, gop=args.gop,
                                      preset=args.preset, workers=args.workers)
    print(f"Kinetics-like videos ready in {out}")
    return 0
