"""``gcvideo table``: parameters and GMACs of every preset next to GCNet's printed figures; with ``--runs``,
measured runs in GCNet's tables (arXiv 1904.11492, Sec. 5).

    gcvideo table                                   # every preset at full size, counted
    gcvideo table --runs runs/kinetics400 [--json] [--plot table.png] [--per-class]

With ``--runs``, every run folder (one holding ``checkpoints/`` or ``test/results.json``) below the given
folders adds its row (``gcvideo.analysis.runs_table``): Markdown on stdout, or the rows as JSON.
"""

from __future__ import annotations

import argparse
import json

from gcvideo.models.presets import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array of {model, input, params, macs} "
                        "(with --runs: the table's rows, accuracies as fractions)")
    parser.add_argument("--models", nargs="+", metavar="NAME", choices=list(PRESETS), help="only these presets")
    parser.add_argument("--runs", nargs="+", metavar="DIR", help="put the run folders found below these folders "
                        "into the paper's tables (Markdown; --json for the rows)")
    parser.add_argument("--plot", metavar="PNG", help="with --runs: also draw top-1 against GMACs, the paper's "
                        "points beside the measured ones")
    parser.add_argument("--per-class", action="store_true", help="with --runs: add top-1 per class")


def run_table(args: argparse.Namespace) -> int:
    """``--runs``: read the run folders, merge seeds, compare with the baselines, print."""
    from gcvideo.analysis.runs import find_run_folders, read_run
    from gcvideo.analysis.runs_report import plot_rows, table_markdown
    from gcvideo.analysis.runs_table import build_rows

    rows = build_rows([read_run(folder) for folder in find_run_folders(args.runs)])
    if args.models:
        rows = [r for r in rows if r["preset"] in args.models]
    print(json.dumps(rows, indent=2, allow_nan=False) if args.json else table_markdown(rows, args.per_class))
    if args.plot:
        plot_rows(rows, args.plot)
    return 0


def _mark(match: bool | str | None) -> str:
    return {True: "ok", "exact": "ok", "rounding": "~ok", False: "DIFFERS", "differs": "DIFFERS", None: "-"}[match]


def run(args: argparse.Namespace) -> int:
    from gcvideo.errors import UserError
    from gcvideo.models.paper_table import measure_rows

    if args.runs:
        return run_table(args)
    if args.plot or args.per_class:
        raise UserError("--plot and --per-class need --runs")

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
