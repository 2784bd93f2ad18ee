"""`gcvideo data bench --mode training` and the GPU check's data helpers."""

import json
import shutil

from data_fixtures import tiny_dataset  # noqa: F401


def test_bench_training_mode_reports_every_lever(tiny_dataset, tmp_path):  # noqa: F811
    from gcvideo.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["data", "bench", "--root", str(tiny_dataset), "--mode", "training", "--clips", "4", "--videos", "3",
                 "--repeats", "1", "--frames", "4", "--stride", "2", "--train-short-side", "24", "28",
                 "--train-crop", "20", "--batch-size", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    names = [r["name"] for r in result["rows"]]
    assert names[0].startswith("baseline") and result["rows"][0]["vs_baseline"] == 1.0
    assert any("uint8" in n for n in names) and any("PyAV seeking" in n for n in names)
    assert any("prepared" in n for n in names) and result["prepare"]["seconds_per_video"] > 0
    assert all(r["clips_per_s"] > 0 for r in result["rows"])


def test_gpu_check_helpers(tiny_dataset, tmp_path):  # noqa: F811
    import importlib.util
    from pathlib import Path

    from gcvideo.data.annotations import load_class_names, resolve_split

    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parents[1] / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    before, _, _ = resolve_split(root, "train", load_class_names(root))
    gpu_check.list_each_video(root, 3)
    gpu_check.list_each_video(root, 3)  # again: the same list, not 9 copies
    after, _, _ = resolve_split(root, "train", load_class_names(root))
    assert len(after) == 3 * len(before) and [r.path for r in after[:len(before)]] == [r.path for r in before]
    assert all(Path(r.path).stat().st_ino == Path(before[i % len(before)].path).stat().st_ino
               for i, r in enumerate(after))  # hard links: no bytes copied
    result = {"machine": {"gpu": "H100", "cpu_cores": 16, "torch": "2"}, "batch": 16, "workers": 14, "steps": 100,
              "skipped_steps": 20, "rows": [
                  {"row": "slow_r50_gc5", "pipeline": "baseline", "model_only_clips_per_s": 290.0,
                   "fit_clips_per_s": 118.0, "data_wait": 0.55, "fit_vs_model_only": 118 / 290, "status": "ok"},
                  {"row": "slow_r50", "pipeline": "fast", "model_only_clips_per_s": None,
                   "fit_clips_per_s": None, "data_wait": None, "status": "timeout"}]}
    table = gpu_check.format_table(result)
    assert "  118.0    55%       41%  baseline" in table and "[timeout]" in table
