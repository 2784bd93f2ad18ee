"""Training curves of a run folder: loss, learning rate and top-1 per epoch, as a table and a PNG.

Every command in a run folder writes its own ``logs/version_N/metrics.csv`` (a resumed fit continues
in a new version). They are read in version order; a step logged twice (a run resumed from an
earlier checkpoint repeats steps) keeps its latest value, so the curves show the run as it ended up.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

COLUMNS = ("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr")
HEADER = ("epoch", "train_loss", "val_loss", "val_top1_percent", "val_top5_percent", "lr")


def _version(path: Path) -> int:
    match = re.search(r"version_(\d+)$", path.parent.name)
    return int(match.group(1)) if match else -1


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of the training logs ``run_dir/*/version_N/metrics.csv``, oldest version first; numbers only.

    Versions without training metrics (those of ``gcvideo validate`` / ``test``) are left out: their
    ``epoch`` is the checkpoint's and would overwrite that epoch's validation values.
    """
    files = sorted(Path(run_dir).glob("*/version_*/metrics.csv"), key=lambda p: (_version(p), str(p)))
    if not files:
        raise FileNotFoundError(f"no metrics.csv under {run_dir} (expected {run_dir}/logs/version_N/metrics.csv "
                                f"from gcvideo fit)")
    rows = []
    for order, path in enumerate(files):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not any(name.startswith("train/") for name in reader.fieldnames or []):
                continue
            for row in reader:
                numbers = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
                numbers["_order"] = order
                rows.append(numbers)
    return rows


def epoch_table(rows: list[dict[str, float]]) -> list[dict[str, float | None]]:
    """One row per epoch: mean train loss over its logged steps, the last validation values, the last lr.

    Returns a list of dicts with ``COLUMNS`` (None where nothing was logged) and ``lr_steps``, the
    learning rates logged in that epoch in step order.
    """
    by_step: dict[tuple[str, int], dict[str, float]] = {}
    evaluations: dict[int, dict[str, float]] = defaultdict(dict)
    for row in sorted(rows, key=lambda r: r["_order"]):
        if "epoch" not in row:
            continue
        epoch = int(row["epoch"])
        for key in ("train/loss", "train/lr"):
            if key in row and "step" in row:
                by_step[(key, int(row["step"]))] = {"epoch": epoch, "value": row[key]}
        for key in ("val/loss", "val/top1", "val/top5"):
            if key in row:
                evaluations[epoch][key] = row[key]
    losses, lrs = defaultdict(list), defaultdict(list)
    for (key, step), entry in sorted(by_step.items(), key=lambda item: item[0][1]):
        (losses if key == "train/loss" else lrs)[entry["epoch"]].append(entry["value"])
    table = []
    for epoch in sorted(set(losses) | set(lrs) | set(evaluations)):
        values = evaluations.get(epoch, {})
        table.append({
            "epoch": epoch,
            "train_loss": sum(losses[epoch]) / len(losses[epoch]) if losses[epoch] else None,
            "val_loss": values.get("val/loss"), "val_top1": values.get("val/top1"), "val_top5": values.get("val/top5"),
            "lr": lrs[epoch][-1] if lrs[epoch] else None, "lr_steps": list(lrs[epoch]),
        })
    return table


def _test_top1(run_dir: Path) -> float | None:
    results = run_dir / "test" / "results.json"
    try:
        value = json.loads(results.read_text(encoding="utf-8")).get("top1")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def plot_curves(table: list[dict[str, Any]], out: str | Path, *, title: str = "",
                test_top1: float | None = None) -> Path:
    """Three panels against the epoch: loss (train, val), learning rate, top-1 (val, and test if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(row["epoch"], row[key]) for row in table if row.get(key) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    fig, (ax_loss, ax_lr, ax_top1) = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, label in (("train_loss", "train (mean over the epoch)"), ("val_loss", "validation")):
        x, y = series(key)
        if x:
            ax_loss.plot(x, y, marker="o", markersize=3, label=label)
    ax_loss.set(title="loss", xlabel="epoch")
    lr_x, lr_y = [], []
    for row in table:  # every logged step, spread over its epoch, so the warm-up shows
        steps = row.get("lr_steps") or []
        lr_x += [row["epoch"] + i / len(steps) for i in range(len(steps))]
        lr_y += steps
    ax_lr.plot(lr_x, lr_y, color="tab:green", linewidth=1.2)
    ax_lr.set(title="learning rate", xlabel="epoch")
    x, y = series("val_top1")
    if x:
        ax_top1.plot(x, [100 * v for v in y], marker="o", markersize=3, label="validation (clip)")
    if test_top1 is not None and table:
        ax_top1.axhline(100 * test_top1, color="tab:red", linestyle="--", label=f"test {100 * test_top1:.1f} %")
    ax_top1.set(title="top-1 (%)", xlabel="epoch")
    for ax in (ax_loss, ax_top1):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def format_cell(value: float | None, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key == "epoch":
        return str(int(value))
    return f"{100 * value:.2f}" if key in ("val_top1", "val_top5") else f"{value:.6g}"


def write_curves(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``curves.png`` and ``curves.csv`` (one row per epoch, top-1/top-5 in %) into ``run_dir``.

    Raises:
        FileNotFoundError: ``run_dir`` has no metrics.csv.
    """
    run_dir = Path(run_dir)
    table = epoch_table(read_metrics(run_dir))
    png = Path(out) if out is not None else run_dir / "curves.png"
    plot_curves(table, png, title=str(run_dir), test_top1=_test_top1(run_dir))
    csv_path = png.with_suffix(".csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows([format_cell(row[key], key) for key in COLUMNS] for row in table)
    return png, csv_path
