"""``gcvideo synth``: write the embedded synthetic dataset (Kinetics layout, or images with --images)."""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 64x64, got {text!r}") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--classes", type=int, default=None, help="number of classes (default 10, images 6)")
    parser.add_argument("--train-per-class", type=int, default=None, help="default 240 (images 100)")
    parser.add_argument("--val-per-class", type=int, default=None, help="default 10 (images 20)")
    parser.add_argument("--test-per-class", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.28, help="clip length in seconds (default 1.28: 32 frames)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=_size, default=(64, 64), help="WxH (even), e.g. 64x64 or 340x256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPUs)")
    parser.add_argument("--images", action="store_true", help="write the 2D image dataset instead")
    parser.add_argument("--force", action="store_true", help="write the videos again even when OUT/synth.json "
                        "shows a complete dataset with the same settings")


def run(args: argparse.Namespace) -> int:
    if args.images:
        from gcvideo.data.synth_images import write_image_dataset

        if args.size[0] != args.size[1]:
            raise SystemExit(f"gcvideo synth --images: square --size needed, got {args.size[0]}x{args.size[1]}")
        out = write_image_dataset(args.out, classes=args.classes or 6, train_per_class=args.train_per_class or 100,
                                  val_per_class=args.val_per_class or 20, size=args.size[0], seed=args.seed)
    else:
        from gcvideo.data.synth import write_video_dataset

        out = write_video_dataset(args.out, classes=args.classes or 10, train_per_class=args.train_per_class or 240,
                                  val_per_class=args.val_per_class or 10, test_per_class=args.test_per_class,
                                  seconds=args.seconds, fps=args.fps, size=args.size, seed=args.seed,
                                  workers=args.workers, force=args.force)
    print(f"dataset ready in {out}")
    return 0
