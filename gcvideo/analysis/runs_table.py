"""GCNet's tables with measured runs beside the paper's figures (arXiv 1904.11492, Sec. 5: the Kinetics-400
action-recognition table and the ImageNet table).

Every preset of a table that has at least one run is a row. The runs of one preset (seeds) are merged:
each accuracy is their mean, with the sample standard deviation when there are several. Each row's top-1
is compared with its table's baseline (``slow_r50`` or ``resnet50``) by a paired bootstrap over the videos
both evaluated (``gcvideo.analysis.bootstrap``). A run is flagged when its test list, class list, set of
evaluated videos or training list differs from the reference run's (the baseline's first tested run, else
the table's first), since such rows were not measured on the same data. Accuracies are fractions in the
JSON rows and percentages in the Markdown.
"""

from __future__ import annotations

import statistics
from typing import Any

from gcvideo.analysis.bootstrap import paired_delta
from gcvideo.analysis.runs import Run
from gcvideo.models.paper_accuracy import PAPER_ACCURACY
from gcvideo.models.presets import PRESETS, create

TABLES = {"Kinetics-400": "slow_r50", "ImageNet": "resnet50"}  # table -> its baseline preset
ACCURACIES = ("top1", "top5", "top1_single_view", "top5_single_view", "mean_class_top1")
_DATA_CHECKS = (("list_sha256", "test list"), ("classes_sha256", "class list"),
                ("evaluated_sha256", "evaluated videos"))
# Every row has these keys (None where a row has no tested run, or no baseline to compare with).
MEASURED_KEYS = (*ACCURACIES, *(f"{k}_std" for k in ACCURACIES), "videos", "missing", "views", "gpu_hours",
                 "device_hours", "clips_per_s", "accelerator", "dataset_sha256", "test_list_sha256", "classes_sha256",
                 "train_list_sha256", "input", "params", "macs", "per_class_top1", "delta_top1", "delta_top1_ci",
                 "delta_videos")


def table_of(preset: str) -> str:
    return "Kinetics-400" if PRESETS[preset].video else "ImageNet"


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    if not values or any(v is None for v in values):
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _same(values: list[Any]) -> Any:
    return values[0] if values and all(v == values[0] for v in values) else None


_COMPLEXITY: dict[tuple, tuple[int, int]] = {}


def complexity(model: dict[str, Any]) -> tuple[int | None, int | None]:
    """Parameters and MACs of a run's model (its ``results.json`` ``model``) at its test input, on one view."""
    import torch

    from gcvideo.models import count_macs, count_parameters

    blocks = model.get("blocks")
    key = (model.get("preset"), model.get("width"), tuple(model.get("depths") or ()), repr(blocks),
           model.get("num_classes"), model.get("input"))
    if None in (key[0], key[1], key[4], key[5]) or not key[2]:
        return None, None
    if key not in _COMPLEXITY:
        with torch.device("meta"):
            net = create(key[0], num_classes=key[4], width=key[1], depths=key[2], blocks=blocks)
        shape = (1, 3, *(int(v) for v in str(key[5]).split("x")))
        _COMPLEXITY[key] = (count_parameters(net), count_macs(net, shape))
    return _COMPLEXITY[key]


def _data_flags(run: Run, reference: Run) -> list[str]:
    if run is reference:
        return []
    mine, theirs = run.section("dataset"), reference.section("dataset")
    if not mine or not theirs:
        return [f"{run.path.name}: no dataset record to compare"]
    differ = [what for key, what in _DATA_CHECKS if mine.get(key) != theirs.get(key)]
    train, reference_train = (run.fit.get("train") or {}).get("list_sha256"), \
        (reference.fit.get("train") or {}).get("list_sha256")
    if train and reference_train and train != reference_train:
        differ.append("training list")
    return [f"{run.path.name}: {', '.join(differ)} differ from {reference.path.name}'s"] if differ else []


def _measured(runs: list[Run]) -> dict[str, Any]:
    """The merged figures of a row's tested runs."""
    out: dict[str, Any] = {}
    for key in ACCURACIES:
        out[key], out[f"{key}_std"] = _mean_std([r.results.get(key) for r in runs])
    for key in ("videos", "missing", "views"):
        values = [r.results.get(key) for r in runs]
        out[key] = _same(values) if _same(values) is not None else _mean_std(values)[0]
    compute = [r.section("compute") for r in runs]
    for key in ("gpu_hours", "device_hours", "clips_per_s"):
        out[key] = _mean_std([c.get(key) for c in compute])[0]
    out["accelerator"] = _same([c.get("accelerator") for c in compute])
    dataset = [r.section("dataset") for r in runs]
    out["dataset_sha256"] = _same([d.get("fingerprint") for d in dataset])
    out["test_list_sha256"] = _same([d.get("list_sha256") for d in dataset])
    out["classes_sha256"] = _same([d.get("classes_sha256") for d in dataset])
    out["train_list_sha256"] = _same([(r.fit.get("train") or {}).get("list_sha256") for r in runs])
    out["input"] = _same([r.section("model").get("input") for r in runs])
    out["params"], out["macs"] = complexity(runs[0].section("model"))
    out["per_class_top1"] = _per_class(runs)
    return out


def _per_class(runs: list[Run]) -> dict[str, float]:
    """Top-1 of each class over a run's evaluated videos, averaged over the runs that evaluated the class."""
    by_class: dict[str, list[float]] = {}
    for run in runs:
        hits: dict[str, list[int]] = {}
        for key, right in run.correct.items():
            hits.setdefault(run.labels[key], []).append(right)
        for label, values in hits.items():
            by_class.setdefault(label, []).append(statistics.fmean(values))
    order = runs[0].section("dataset").get("classes") or sorted(by_class)  # the class list's order when known
    return {label: statistics.fmean(by_class[label]) for label in order if label in by_class}


def _row_names(runs: list[Run], table: str) -> list[str]:
    """The table's presets in the paper's order, then any other row (e.g. a fine-tuned preset)."""
    names = [p for p in PRESETS if table_of(p) == table]
    extra = sorted({r.row for r in runs if table_of(r.preset) == table} - set(names))
    return names + extra


def build_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """The rows of every table that has a run (module docstring), baseline first."""
    rows = []
    for table, baseline in TABLES.items():
        in_table = [r for r in runs if table_of(r.preset) == table]
        if not in_table:
            continue
        tested = [r for r in in_table if r.tested]
        base_runs = [r for r in tested if r.row == baseline]
        reference = (base_runs or tested or [None])[0]
        for name in _row_names(in_table, table):
            mine = [r for r in in_table if r.row == name]
            preset = mine[0].preset if mine else name
            measured = [r for r in mine if r.tested]
            paper = PAPER_ACCURACY.get(name)
            row: dict[str, Any] = {
                "table": table, "model": name, "preset": preset,
                "status": "measured" if measured else "not tested" if mine else "no run",
                "runs": len(measured), "not_tested": len(mine) - len(measured),
                "run_dirs": [str(r.path) for r in mine], "seeds": [r.fit.get("seed") for r in measured],
                "paper_top1": None if paper is None or paper.top1 is None else round(paper.top1 / 100, 6),
                "paper_top5": None if paper is None or paper.top5 is None else round(paper.top5 / 100, 6),
                "paper_approximate": None if paper is None else paper.approximate,
                "baseline": baseline, "flags": [], **dict.fromkeys(MEASURED_KEYS),
            }
            row.update(_measured(measured) if measured else {})
            if measured and base_runs and name != baseline:
                row.update(paired_delta([r.correct for r in measured], [r.correct for r in base_runs]).as_json())
            if reference is not None:
                row["flags"] = [f for r in measured for f in _data_flags(r, reference)]
            if measured and len({r.section("model").get("width") for r in measured}) > 1:
                row["flags"].append("its runs differ in model width")
            rows.append(row)
    return rows
