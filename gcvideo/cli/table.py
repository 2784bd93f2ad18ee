"""``gcvideo table``: parameters and GMACs of every preset next to GCNet's printed figures."""

from __future__ import annotations

import argparse
import json

from gcvideo.models.presets import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array of {model, input, params, macs}")
    parser.add_argument("--models", nargs="+", metavar="NAME", choices=list(PRESETS), help="only these presets")


def _mark(match: bool | str | None) -> str:
    return {True: "ok", "exact": "ok", "rounding": "~ok", False: "DIFFERS", "differs": "DIFFERS", None: "-"}[match]


def run(args: argparse.Namespace) -> int:
    from gcvideo.models.paper_table import measure_rows

    rows = list(measure_rows(args.models))
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
        return 0
    header = f"{'model':<18} {'input':<10} {'params':>10} {'paper':>8} {'':<7} {'GMACs':>7} {'paper':>10} {'':<7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        paper_params = "-" if row.paper_params_m is None else f"{row.paper_params_m:.3f}M"
        print(
            f"{row.model:<18} {row.input:<10} {row.params / 1e6:>9.3f}M {paper_params:>8} {_mark(row.params_match):<7} "
            f"{row.macs / 1e9:>7.2f} {row.paper_gmacs or '-':>10} {_mark(row.gmacs_match):<7}"
        )
    differing = [r for r in rows if r.params_match is False or r.gmacs_match == "differs"]
    print(
        "\nMACs: conv, linear and attention matmuls, counted on the meta device (FLOPs / 2). Paper compute of "
        "the block rows is printed as a delta over the baseline and compared as such; ~ok: within one unit of "
        "the last printed digit (a printed delta is a difference of rounded totals)."
    )
    if differing:
        print("Differs from the paper: " + ", ".join(f"{r.model} @ {r.input}" for r in differing))
    return 0
