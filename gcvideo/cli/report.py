"""``gcvideo report RUN_DIR``: the training curves of a run folder (loss, learning rate, top-1 per epoch).

    gcvideo report runs/synthetic/slow_r50_gc5     # writes curves.png and curves.csv there

``gcvideo fit`` and ``gcvideo test`` write the same at their end.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run folder (trainer.default_root_dir: holds logs/version_N/metrics.csv)")
    parser.add_argument("--out", default=None, help="PNG to write (default RUN_DIR/curves.png; the table goes "
                        "next to it as .csv)")


def run(args: argparse.Namespace) -> int:
    from gcvideo.analysis.curves import COLUMNS, HEADER, format_cell, epoch_table, read_metrics, write_curves

    png, table_path = write_curves(args.run_dir, args.out)
    table = epoch_table(read_metrics(args.run_dir))
    widths = [max(len(h), 10) for h in HEADER]
    print("  ".join(h.rjust(w) for h, w in zip(HEADER, widths)))
    for row in table:
        print("  ".join(format_cell(row[key], key).rjust(w) for key, w in zip(COLUMNS, widths)))
    print(f"curves: {png}\ntable:  {table_path}")
    return 0
