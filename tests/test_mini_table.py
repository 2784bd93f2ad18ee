"""``scripts/mini_table.py --quick`` end to end: two rows trained and tested, the table of ``gcvideo table --runs``
with its per-class breakdown, the plot and the NL analysis written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_quick_table(tmp_path):
    spec = importlib.util.spec_from_file_location("mini_table", ROOT / "scripts" / "mini_table.py")
    mini_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mini_table)
    assert mini_table.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "table.json").read_text())  # gcvideo table --runs --json
    measured = [r for r in rows if r["status"] == "measured"]
    assert [r["model"] for r in measured] == ["slow_r50", "slow_r50_nl5"]
    assert [r["status"] for r in rows if r not in measured] == ["no run"] * 3  # the paper's other rows
    for r in measured:
        assert r["views"] == 2 and r["missing"] == 0 and 0 <= r["top1"] <= r["top5"] <= 1
        assert set(r["per_class_top1"]) == set((tmp_path / "data" / "classnames.txt").read_text().splitlines())
        # each class has 2 test videos, so its top-1 is 0, 1/2 or 1 and the mean over classes is the top-1
        assert all(v in (0.0, 0.5, 1.0) for v in r["per_class_top1"].values())
        assert abs(sum(r["per_class_top1"].values()) / 3 - r["top1"]) < 1e-9
        assert abs(r["mean_class_top1"] - r["top1"]) < 1e-9
    nl = measured[1]
    assert nl["params"] > measured[0]["params"]  # NL adds parameters
    assert nl["delta_videos"] == 6 and nl["delta_top1_ci"][0] <= nl["delta_top1"] <= nl["delta_top1_ci"][1]
    markdown = (tmp_path / "table.md").read_text()
    assert "Top-1 (%) per class" in markdown and "| `slow_r50_nl5` | 1 |" in markdown
    with Image.open(tmp_path / "top1_vs_macs.png") as png:
        assert png.size == (1000, 400)
    assert (tmp_path / "analysis_nl5" / "stats.json").is_file()
