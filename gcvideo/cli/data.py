"""``gcvideo data check|bench|prepare|make-bench-videos``: find unreadable videos, time the clip pipelines,
re-encode a dataset for fast training, write benchmark videos (issues 3 and 9)."""

from __future__ import annotations

import argparse

from gcvideo.cli.data_pipeline import add_parsers, run as run_pipeline_tool


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
    add_parsers(sub)  # bench, prepare, make-bench-videos (gcvideo/cli/data_pipeline.py)


def run(args: argparse.Namespace) -> int:
    if args.action != "check":
        return run_pipeline_tool(args)
    if args.action == "check":
        from gcvideo.data.check import check_split

        summary = check_split(args.root, args.split, workers=args.workers, timeout=args.timeout,
                              backend=args.decoder, min_frames=args.min_frames, class_names_file=args.class_names_file)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["reasons"].items())) or "none"
        print(f"{summary['split']}: {summary['videos']} videos ({summary['format']}: {summary['source']}), "
              f"{summary['clean']} clean, {summary['bad']} bad (reasons: {reasons})")
        print(f"clean list: {summary['clean_list']}\nbad list:   {summary['bad_list']}")
        return 0
