"""``gcvideo table --runs`` as Markdown and as a picture: the rows of ``gcvideo.analysis.runs_table`` next to
GCNet's figures (arXiv 1904.11492: the Kinetics-400 action-recognition table, Slow-only R50 8x8 with 10 x 3
views, and the ImageNet table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcvideo.analysis.bootstrap import RESAMPLES
from gcvideo.models.paper_accuracy import PYTORCHVIDEO_SLOW_R50
from gcvideo.models.presets import IMAGE_INPUTS, PRESETS, VIDEO_INPUTS

HEADER = ("model", "runs", "params", "{unit}", "paper top-1 / top-5", "top-1 / top-5 ({views})",
          "top-1 / top-5 (1 view)", "Δ top-1 vs {baseline} [95% CI]", "videos", "missing", "GPU-hours",
          "test data")


def _decimals(rows: list[dict[str, Any]]) -> int:
    """One decimal of a percent up to 1,000 videos (one video moves top-1 by 0.1 or more), then two."""
    videos = [r["videos"] for r in rows if r["videos"] is not None]
    return 1 if not videos or max(videos) <= 1000 else 2


def _percent(value: float | None, std: float | None, decimals: int, approximate: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{'~' if approximate else ''}{100 * value:.{decimals}f}"
    return text if std is None else f"{text} ± {100 * std:.{decimals}f}"


def _pair(row: dict[str, Any], first: str, second: str, decimals: int) -> str:
    if row["status"] != "measured":
        return row["status"] if row["status"] == "not tested" else ""
    return (f"{_percent(row[first], row[f'{first}_std'], decimals)} / "
            f"{_percent(row[second], row[f'{second}_std'], decimals)}")


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if float(value).is_integer() else f"{value:,.1f}"


def _runs(row: dict[str, Any]) -> str:
    if row["status"] == "no run":
        return "-"
    text = str(row["runs"])
    if row["runs"] > 1 and all(s is not None for s in row["seeds"]):
        text += f" (seeds {', '.join(str(s) for s in row['seeds'])})"
    if row["not_tested"]:
        text += f" ({'+' if row['runs'] else ''}{row['not_tested']} not tested)"
    return text


def _size(row: dict[str, Any], shared_input: str | None, scale: float) -> tuple[str, str]:
    if row["params"] is None:
        return "-", "-"
    params = f"{row['params'] / 1e6:.3f}M" if row["params"] >= 1e6 else f"{row['params'] / 1e3:.1f}k"
    value = row["macs"] / scale
    macs = (f"{value:.2f}" if value >= 1 else f"{value:.4g}") + ("" if shared_input else f" ({row['input']})")
    return params, macs


def macs_unit(rows: list[dict[str, Any]]) -> tuple[float, str]:
    """GMACs, or MMACs when every measured model is below one GMAC (small synthetic models)."""
    macs = [r["macs"] for r in rows if r["macs"] is not None]
    return (1e6, "MMACs") if macs and max(macs) < 1e9 else (1e9, "GMACs")


def _delta(row: dict[str, Any], decimals: int) -> str:
    if row["model"] == row["baseline"]:
        return "baseline" if row["status"] == "measured" else ""
    if row["delta_top1"] is None:
        return "-" if row["status"] != "measured" else "no common videos"
    low, high = row["delta_top1_ci"]
    sign = lambda v: f"{100 * v:+.{decimals}f}"  # noqa: E731
    return f"{sign(row['delta_top1'])} [{sign(low)}, {sign(high)}] ({row['delta_videos']:,} videos)"


def _cost(row: dict[str, Any]) -> str:
    if row["gpu_hours"] is not None:
        return f"{row['gpu_hours']:.3g}"
    if row["device_hours"] is not None:
        return f"{row['device_hours']:.3g} {(row['accelerator'] or 'device').upper()}-hours"
    return "-"


def _fingerprint(row: dict[str, Any]) -> str:
    if row["status"] != "measured":
        return ""
    text = row["dataset_sha256"][:8] if row["dataset_sha256"] else "runs differ"
    return text + (" (!)" if row["flags"] else "")


def table_markdown(rows: list[dict[str, Any]], per_class: bool = False) -> str:
    """One Markdown table per paper table, with the notes that say how to read it."""
    out: list[str] = []
    decimals = _decimals(rows)
    for table in dict.fromkeys(r["table"] for r in rows):
        mine = [r for r in rows if r["table"] == table]
        measured = [r for r in mine if r["status"] == "measured"]
        views = {r["views"] for r in measured}
        inputs = {r["input"] for r in measured}
        shared_input = next(iter(inputs)) if len(inputs) == 1 else None
        scale, unit = macs_unit(mine)
        count = next(iter(views)) if len(views) == 1 else None
        header = [h.format(views="all views" if count is None else f"{count} view{'s' * (count != 1)}",
                           baseline=mine[0]["baseline"], unit=unit) for h in HEADER]
        out += [f"### {table}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in mine:
            paper = (f"{_percent(r['paper_top1'], None, 1, bool(r['paper_approximate']))} / "
                     f"{_percent(r['paper_top5'], None, 1, bool(r['paper_approximate']))}")
            cells = [f"`{r['model']}`", _runs(r), *_size(r, shared_input, scale), paper,
                     _pair(r, "top1", "top5", decimals), _pair(r, "top1_single_view", "top5_single_view", decimals),
                     _delta(r, decimals), _count(r["videos"]), _count(r["missing"]), _cost(r), _fingerprint(r)]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", *_notes(mine, table, shared_input, unit)]
        if per_class and measured:
            out += ["", *_per_class(measured, decimals)]
        out.append("")
    return "\n".join(out)


def _notes(rows: list[dict[str, Any]], table: str, shared_input: str | None, unit: str) -> list[str]:
    baseline = rows[0]["baseline"]
    source = ("Kinetics-400 action-recognition table (Slow-only R50 8x8, 10 x 3 views; pytorchvideo's "
              f"`slow_r50` checkpoint: {PYTORCHVIDEO_SLOW_R50.top1} / {PYTORCHVIDEO_SLOW_R50.top5})"
              if table == "Kinetics-400" else "ImageNet table (ResNet-50, 224 x 224)")
    notes = [f"Paper: GCNet (Cao et al., arXiv 1904.11492), its {source}; ~ marks approximate figures.",
             f"Measured: mean over a row's runs (± their standard deviation when there are several); {unit} per "
             f"view{f' at {shared_input}' if shared_input else ''}; 1 view: the window nearest the centre "
             "with its centre crop, from the same test pass.",
             f"Δ: top-1 minus `{baseline}`'s on the videos both evaluated, with a 95 % interval from a paired "
             f"bootstrap over those videos ({RESAMPLES:,} resamples); an interval that holds 0 is within the "
             "noise of the test set. GPU-hours: per run, from the fit's own record. Test data: the first 8 hex "
             "of the test set's fingerprint (list, classes and evaluated videos)."]
    flagged = [f"- `{r['model']}`: {flag}" for r in rows for flag in r["flags"]]
    return notes + (["", "(!) Not measured on the same data:", *flagged] if flagged else [])


def _per_class(rows: list[dict[str, Any]], decimals: int) -> list[str]:
    classes = list(dict.fromkeys(c for r in rows for c in r["per_class_top1"]))
    lines = ["Top-1 (%) per class:", "", "| class | " + " | ".join(f"`{r['model']}`" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for c in classes:
        cells = [_percent(r["per_class_top1"].get(c), None, 0) for r in rows]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def paper_gmacs(preset: str, size: str | None) -> tuple[float, str] | None:
    """GMACs as the paper prints them (a delta added to its baseline's), at ``size`` when the paper has that
    input, else at its first; None when the paper prints none."""
    inputs = VIDEO_INPUTS if PRESETS[preset].video else IMAGE_INPUTS
    size = size if size in inputs else inputs[0]
    reference = PRESETS[preset].paper_gmacs.get(size)
    if reference is None:
        return None
    base = PRESETS[PRESETS[preset].baseline].paper_gmacs[size].value
    return (base + reference.value if reference.delta else reference.value), size


def _draw(axis: Any, points: list[tuple[str, float, float, float | None, str]], title: str, what: str) -> None:
    """Labelled points (name, MACs, top-1 %, spread %, colour): GMACs, or MMACs below one GMAC; of two close
    points the later label goes one line up, so that rows of nearly equal cost and accuracy stay readable."""
    from matplotlib.ticker import MaxNLocator

    scale, unit = (1e9, "GMACs") if not points or max(p[1] for p in points) >= 1e9 else (1e6, "MMACs")
    xs, ys = [p[1] / scale for p in points], [p[2] for p in points]
    x_span, y_span = (max(xs, default=1) - min(xs, default=0)) or 1.0, (max(ys, default=1) - min(ys, default=0)) or 1.0
    for index, ((name, _, _, spread, colour), x, y) in enumerate(zip(points, xs, ys)):
        up = sum(abs(x - px) < 0.05 * x_span and abs(y - py) < 0.05 * y_span for px, py in zip(xs[:index], ys[:index]))
        axis.errorbar(x, y, yerr=spread, fmt="o", capsize=3, color=colour)
        axis.annotate(name, (x, y), textcoords="offset points", xytext=(6, -3 + 10 * up), fontsize=8)
    axis.margins(x=0.2)
    axis.xaxis.set_major_locator(MaxNLocator(5))
    axis.ticklabel_format(axis="x", useOffset=False)
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(f"{unit} per view ({what})")
    axis.set_ylabel("top-1 (%)")
    axis.grid(alpha=0.3)


def plot_rows(rows: list[dict[str, Any]], path: str | Path) -> None:
    """A PNG of top-1 against MACs: the paper's points on the left, the measured ones (± their spread over
    seeds) on the right, one pair of panels per table."""
    from matplotlib.figure import Figure

    tables = list(dict.fromkeys(r["table"] for r in rows))
    fig = Figure(figsize=(10, 4 * len(tables)), dpi=100)
    axes = fig.subplots(len(tables), 2, squeeze=False)
    for (paper_axis, run_axis), table in zip(axes, tables):
        mine = [r for r in rows if r["table"] == table]
        size = next((r["input"] for r in mine if r["input"]), None)
        paper, measured = [], []
        for index, r in enumerate(mine):  # one colour per row in both panels
            reference = paper_gmacs(r["preset"], size)
            if r["paper_top1"] is not None and reference is not None and r["model"] == r["preset"]:
                paper.append((r["model"], reference[0] * 1e9, 100 * r["paper_top1"], None, f"C{index}"))
            if r["status"] == "measured" and r["macs"] is not None and r["top1"] is not None:
                spread = None if r["top1_std"] is None else 100 * r["top1_std"]
                measured.append((r["model"], r["macs"], 100 * r["top1"], spread, f"C{index}"))
        paper_input = paper_gmacs(mine[0]["baseline"], size)
        _draw(paper_axis, paper, f"{table}: GCNet (arXiv 1904.11492)", paper_input[1] if paper_input else "")
        _draw(run_axis, measured, f"{table}: measured runs", size or "test input")
    fig.tight_layout()
    fig.savefig(str(path))
