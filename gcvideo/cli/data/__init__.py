"""``gcvideo data check|bench|prepare|make-bench-videos``: the data tools, one module each.

    gcvideo data check --root /data/k400 --split train          # every video decoded: manifest, clean/bad lists
    gcvideo data bench --root datasets/bench340 --mode training # clips/s of one DataLoader worker per lever
    gcvideo data prepare --root /data/k400 --out /data/k400_320 # re-encoded for fast training decoding
    gcvideo data make-bench-videos --out datasets/bench340      # Kinetics-like files to benchmark with

Each module has ``add_parser(subparsers)`` and ``run(args) -> int``; none imports Lightning.
"""

from __future__ import annotations

import argparse

from gcvideo.cli.data import bench, bench_videos, check, prepare

ACTIONS = {"check": check, "bench": bench, "prepare": prepare, "make-bench-videos": bench_videos}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for module in ACTIONS.values():
        module.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action].run(args)
