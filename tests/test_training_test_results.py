"""``TestResultsWriter``: ``results.json`` and ``predictions.csv`` of a multi-view test, against an independent
computation from the per-view probabilities; strict JSON when no video was evaluated."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import torch

from gcvideo.training.multiview_metric import MultiViewAccuracy
from gcvideo.training.test_results import TestResultsWriter, write_test_results

NAMES = ["moving left", "moving right", "moving up", "turning", "growing", "shrinking", "fading"]


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _test(num_videos: int, views: int, classes: int, skipped: set[int], invalid: set[int], seed: int = 0):
    """Per-view probabilities and labels, and the metric's results when the items in ``skipped`` are never
    tested and those in ``invalid`` could not be decoded."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(num_videos * views, classes, generator=g) * 2, dim=1)
    labels = torch.randint(0, classes, (num_videos,), generator=g)
    metric = MultiViewAccuracy(num_videos, views, classes)
    items = torch.tensor([i for i in range(num_videos * views) if i not in skipped])
    valid = torch.tensor([i not in invalid for i in items.tolist()])
    metric.update(probs[items], labels.repeat_interleave(views)[items], items, valid)
    return probs.view(num_videos, views, classes), labels, metric.compute()


@pytest.mark.parametrize("classes", [7, 3])
def test_files_match_the_mean_of_the_views(classes, tmp_path):
    n, v = 6, 4
    skipped, invalid = {3 * v + 1}, {1 * v + 2}  # video 3 lacks a view (incomplete), video 1 has a bad one (missing)
    probs, labels, results = _test(n, v, classes, skipped, invalid)
    names, paths = NAMES[:classes], [f"/videos/{i}.mp4" for i in range(n - 1)]  # the last video has no path
    write_test_results(tmp_path / "test", results, names, paths)

    k = min(5, classes)
    mean = probs.double().mean(dim=1).tolist()  # the test protocol: the average of the views' softmax
    lines, hits1, hits5 = [f"video_index,path,label,status,top1,correct,top{k}_classes,top{k}_probs"], [], []
    for video in range(n):
        label = int(labels[video])
        status = "missing" if video == 1 else "incomplete" if video == 3 else "ok"
        line = f"{video},{paths[video] if video < len(paths) else ''},{names[label]},{status}"
        if status == "ok":
            order = sorted(range(classes), key=lambda c: -mean[video][c])[:k]
            hits1.append(order[0] == label)
            hits5.append(label in order)
            line += (f",{names[order[0]]},{int(order[0] == label)},{'|'.join(names[c] for c in order)},"
                     + "|".join(f"{mean[video][c]:.6f}" for c in order))
        lines.append(line)
    assert (tmp_path / "test" / "predictions.csv").read_bytes() == "".join(f"{x}\r\n" for x in lines).encode()

    expected = {"top1": sum(hits1) / len(hits1), "top5": sum(hits5) / len(hits5), "videos": n - 2, "missing": 1,
                "incomplete": 1, "views": v}
    text = (tmp_path / "test" / "results.json").read_text(encoding="utf-8")
    assert text == json.dumps(expected, indent=2) + "\n"
    assert _strict(text) == expected


def test_no_video_evaluated_gives_null_and_says_why(tmp_path, caplog):
    n, v = 3, 4
    _, labels, results = _test(n, v, 3, skipped={video * v for video in range(n)}, invalid=set())
    with caplog.at_level(logging.INFO, logger="gcvideo.training.test_results"):
        write_test_results(tmp_path, results, NAMES[:3], [])
    assert _strict((tmp_path / "results.json").read_text(encoding="utf-8")) == {
        "top1": None, "top5": None, "videos": 0, "missing": 0, "incomplete": 3, "views": v}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [(f"{tmp_path / 'results.json'}: top1, top5 null: no test video was evaluated (3 incomplete: "
                         "not every view tested, e.g. with trainer.limit_test_batches; 0 missing: a view could not "
                         "be decoded)")]
    rows = (tmp_path / "predictions.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert rows == [f"{video},,{NAMES[int(labels[video])]},incomplete" for video in range(n)]


def test_the_callback_writes_on_the_first_process_after_a_multiview_test(tmp_path):
    _, _, results = _test(2, 2, 3, skipped=set(), invalid=set())
    dataset = SimpleNamespace(video_paths=["a.mp4", "b.mp4"])
    module = SimpleNamespace(test_results=results, hparams={"class_names": None}, num_classes=3)

    def trainer(root, zero: bool) -> SimpleNamespace:
        return SimpleNamespace(is_global_zero=zero, default_root_dir=str(root),
                               test_dataloaders=SimpleNamespace(dataset=dataset))

    TestResultsWriter().on_test_end(trainer(tmp_path / "rank1", zero=False), module)
    TestResultsWriter().on_test_end(trainer(tmp_path / "clips", zero=True), SimpleNamespace(test_results=None))
    assert not (tmp_path / "rank1").exists() and not (tmp_path / "clips").exists()
    TestResultsWriter().on_test_end(trainer(tmp_path / "run", zero=True), module)
    rows = (tmp_path / "run" / "test" / "predictions.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == dataset.video_paths
    assert {row.split(",")[4] for row in rows[1:]} <= {"0", "1", "2"}  # unnamed classes: their indices
