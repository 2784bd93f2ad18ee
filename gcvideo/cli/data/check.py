"""``gcvideo data check``: decode every listed video, write its manifest row and the clean and bad lists."""

from __future__ import annotations

import argparse
import sys

from gcvideo.data.annotations import FORMATS
from gcvideo.data.decoding.decoders import CHECKABLE_BACKENDS
from gcvideo.errors import UserError


def add_parser(sub) -> None:
    check = sub.add_parser(
        "check", help="decode every listed video in parallel; write a per-video manifest and clean/bad lists",
        description="Decode every video of a split in order (child processes with a timeout, all cores by "
                    "default), compare the fast decoders with that decode, and write OUT/<split>.manifest.csv "
                    "(frame count, fps, rotation, codec, decodable range, backend per video; flushed as it goes, "
                    "so a rerun resumes), OUT/<split>.clean.csv and OUT/<split>.bad.csv (with reasons).")
    check.add_argument("--root", required=True, help="dataset folder (annotations/, videos/)")
    check.add_argument("--split", default="train", help="split to check: annotations/<split>.csv, <split>.txt or "
                                                        "videos/<split>/ (default: train)")
    check.add_argument("--out", default=None, help="folder for the manifest and the lists (default: "
                                                   "ROOT/annotations; give one for a read-only dataset)")
    check.add_argument("--workers", type=int, default=None, help="parallel decoding processes (default: all cores)")
    check.add_argument("--timeout", type=float, default=60.0, help="seconds per video before it counts as bad "
                                                                   "(its process is killed; default: 60)")
    check.add_argument("--backends", nargs="+", default=None, choices=CHECKABLE_BACKENDS,
                       help="backends to try in order for each video's manifest entry (default: pyav decord; "
                            "torchcodec only if named); PyAV decoding from the start is the last resort")
    check.add_argument("--min-frames", type=int, default=1, help="videos with fewer decodable frames go to the "
                                                                 "bad list (default: 1)")
    check.add_argument("--class-names-file", default=None, help="class list, one name per line (default: "
                                                                "ROOT/classnames.txt, else Kinetics-400)")
    check.add_argument("--annotation-format", default="auto", choices=FORMATS,
                       help="how the split lists its videos (default: auto)")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")


def _next_step(summary: dict) -> str:
    """How to train on the clean list (the exact data option)."""
    root = f"--data.init_args.root {summary['root']}"
    if summary["default_out"]:
        return f"{root} --data.init_args.list_suffix .clean  (once every split is checked)"
    stage = summary["split"] if summary["split"] in ("train", "val", "test") else "train"
    return f"{root} --data.init_args.{stage}_list {summary['clean_list']}  (the manifest beside it is used too)"


def run(args: argparse.Namespace) -> int:
    from gcvideo.data.preparation.split_check import check_split

    try:
        summary = check_split(args.root, args.split, out=args.out, workers=args.workers, timeout=args.timeout,
                              backends=args.backends, min_frames=args.min_frames,
                              class_names_file=args.class_names_file, annotation_format=args.annotation_format,
                              progress=not args.no_progress)
    except UserError as e:  # a read-only output folder, a missing list: one line saying what to do
        print(f"gcvideo data check: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the videos checked so far are in the manifest; run the same command again "
              "to check the rest", flush=True)
        return 130
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["reasons"].items())) or "none"
    backends = ", ".join(f"{k} {v}" for k, v in sorted(summary["backends"].items())) or "none"
    print(f"{summary['split']}: {summary['videos']} videos ({summary['format']}: {summary['source']}); "
          f"checked now {summary['checked']}, from an earlier run {summary['resumed']}")
    print(f"  clean {summary['clean']} (of which partly decodable {summary['partial']}: clips come from the part "
          f"that decodes), bad {summary['bad']} (by reason: {reasons})")
    print(f"  backend per clean video: {backends}")
    print(f"manifest:   {summary['manifest']}\nclean list: {summary['clean_list']}\nbad list:   {summary['bad_list']}")
    print(f"next: train on the clean list with  gcvideo fit --config CONFIG {_next_step(summary)}")
    return 0
