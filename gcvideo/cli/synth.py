"""``gcvideo synth``: write the embedded synthetic dataset (Kinetics layout, or images with --images)."""

from __future__ import annotations

import argparse
import inspect

from gcvideo.cli.argument_types import frame_size


def _defaults(writer) -> dict:
    return {name: p.default for name, p in inspect.signature(writer).parameters.items()
            if p.default is not inspect.Parameter.empty}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Every dataset option defaults to None: the writers' own defaults apply, and the help shows them
    # from their signatures, so the two never drift apart.
    from gcvideo.data.synthetic.images import write_image_dataset
    from gcvideo.data.synthetic.videos import write_video_dataset

    video, image = _defaults(write_video_dataset), _defaults(write_image_dataset)
    both = lambda name: f"default {video[name]} (images {image[name]})"  # noqa: E731
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--classes", type=int, help=f"number of classes, {both('classes')}")
    parser.add_argument("--train-per-class", type=int, help=both("train_per_class"))
    parser.add_argument("--val-per-class", type=int, help=both("val_per_class"))
    parser.add_argument("--test-per-class", type=int, help=f"default {video['test_per_class']} (videos only)")
    parser.add_argument("--seconds", type=float, help=f"clip length in seconds, default {video['seconds']}")
    parser.add_argument("--fps", type=float, help=f"default {video['fps']}")
    parser.add_argument("--size", type=frame_size, help=f"WxH (even), e.g. 64x64 or 340x256; default "
                        f"{'x'.join(map(str, video['size']))} (images: square, {image['size']})")
    parser.add_argument("--seed", type=int, help=f"default {video['seed']}")
    parser.add_argument("--workers", type=int, help="encoding processes (default: all CPUs)")
    parser.add_argument("--images", action="store_true", help="write the 2D image dataset instead")
    parser.add_argument("--force", action="store_true", help="write the videos again even when OUT/synth.json "
                        "shows a complete dataset with the same settings")


def _given(args: argparse.Namespace, *names: str) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run(args: argparse.Namespace) -> int:
    if args.images:
        from gcvideo.data.synthetic.images import write_image_dataset

        options = _given(args, "classes", "train_per_class", "val_per_class", "seed")
        if args.size is not None:
            if args.size[0] != args.size[1]:
                raise SystemExit(f"gcvideo synth --images: square --size needed, got {args.size[0]}x{args.size[1]}")
            options["size"] = args.size[0]
        out = write_image_dataset(args.out, **options)
    else:
        from gcvideo.data.synthetic.videos import write_video_dataset

        out = write_video_dataset(args.out, force=args.force, **_given(
            args, "classes", "train_per_class", "val_per_class", "test_per_class", "seconds", "fps", "size", "seed",
            "workers"))
    print(f"dataset ready in {out}")
    return 0
