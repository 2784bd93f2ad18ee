"""``gcvideo analyze`` end to end on a tiny trained NL checkpoint: stats.json, stats.md, readable PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gcvideo.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # width-4 model on 4x32x32 clips, as the training tests do
    "--model.width=4", "--data.init_args.frames=4", "--data.init_args.stride=4",
    "--data.init_args.batch_size=3", "--data.init_args.num_workers=0",
    "--data.init_args.train_short_side=[32, 32]", "--data.init_args.train_crop=32",
    "--data.init_args.val_short_side=32", "--data.init_args.val_crop=32",
    "--data.init_args.test_short_side=32", "--data.init_args.test_crop=32",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    "--trainer.max_epochs=1", "--model.lr_scheduler.init_args.warmup_epochs=0", "--trainer.limit_val_batches=0",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, last.ckpt of slow_r50_nl5 trained one tiny epoch)."""
    from gcvideo.cli.lightning_cli import run_lightning_cli
    from gcvideo.data.synthetic.videos import write_video_dataset

    data = write_video_dataset(tmp_path_factory.mktemp("videos"), classes=3, train_per_class=2, val_per_class=2,
                               test_per_class=1, seconds=1.0, fps=16.0, size=(32, 32), seed=0, workers=1,
                               progress=False)
    run = tmp_path_factory.mktemp("nl5")
    run_lightning_cli(["fit", "--config", str(ROOT / "configs/synthetic/slow_r50_nl5.yaml"), *TINY,
                       f"--data.init_args.root={data}", f"--trainer.default_root_dir={run}",
                       f"--trainer.logger.init_args.save_dir={run}"])
    return data, run / "checkpoints" / "last.ckpt"


def test_analyze_writes_stats_and_pictures(trained, tmp_path) -> None:
    data, ckpt = trained
    out = tmp_path / "analysis"
    assert main(["analyze", "--ckpt", str(ckpt), "--root", str(data), "--clips", "4", "--pictures", "1",
                 "--pairs", "64", "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["model"] == "slow_r50_nl5" and stats["clips"] == 4 and stats["skipped"] == 0
    assert stats["js_units"] == "nats"
    assert len(stats["blocks"]) == 5
    for block in stats["blocks"].values():
        assert block["kind"] == "nl" and block["clips"] == 4
        assert block["attention_js"]["pairs"] == 4 * 64
        assert 0.0 <= block["attention_js"]["mean"] <= 0.7
        assert 0.0 <= block["input"]["mean"] <= 2.0
    table = (out / "stats.md").read_text()
    assert table.count("| NL |") == 5 and "attention JS (nats)" in table
    assert len(stats["pictures"]) == 5  # one clip, five NL blocks
    for picture in stats["pictures"]:
        with Image.open(picture) as image:
            image.verify()
        with Image.open(picture) as image:
            # 4 query rows x 4 frames (4-frame clips, key grid 4x2x2 / 4x1x1), 128-pixel cells
            assert image.format == "PNG" and image.size == (512, 512)


def test_analyze_reads_an_exported_backbone(trained, tmp_path) -> None:
    from gcvideo.cli.analyze import load_model
    from gcvideo.models.io import export_backbone

    data, ckpt = trained
    model, info = load_model(str(ckpt))
    exported = export_backbone(model, tmp_path / "nl5.safetensors", data_info=info)
    again, again_info = load_model(str(exported))
    assert again_info["frames"] == 4 and again_info["crop"] == 32
    out = tmp_path / "from_export"
    assert main(["analyze", "--ckpt", str(exported), "--root", str(data), "--clips", "2", "--pictures", "0",
                 "--out", str(out)]) == 0
    assert json.loads((out / "stats.json").read_text())["pictures"] == []


def test_analyze_errors_are_clear(trained, tmp_path, capsys) -> None:
    from gcvideo.training.module import Classifier

    data, ckpt = trained
    baseline = Classifier("slow_r50", num_classes=3, width=4)
    plain = tmp_path / "baseline.ckpt"
    torch.save({"hyper_parameters": dict(baseline.hparams), "state_dict": baseline.state_dict()}, plain)
    broken = torch.load(ckpt, weights_only=True)
    broken["state_dict"].pop(next(k for k in broken["state_dict"] if "conv_theta" in k))
    torch.save(broken, tmp_path / "broken.ckpt")
    cases = {plain: "no NL, SNL or GC block", tmp_path / "broken.ckpt": "cannot load a gcvideo model",
             tmp_path / "missing.ckpt": "no such file"}
    for path, message in cases.items():
        assert main(["analyze", "--ckpt", str(path), "--root", str(data), "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err


def test_picture_shows_the_peak_frame(tmp_path, monkeypatch) -> None:
    """A map whose mass sits in a frame the even spacing skips (frame 6; 4 of 8 frames: 0, 2, 5, 7) is shown."""
    from gcvideo.analysis import pictures
    from gcvideo.analysis.hooks import BlockMaps

    maps = torch.full((1, 8 * 2 * 2), 1e-3)
    maps[0, 6 * 4 + 1] = 1.0  # (t=6, h=0, w=1)
    block = BlockMaps(clip=0, block="b", kind="nl", grid=(8, 2, 2), key_grid=(8, 2, 2), queries=[(0, 0, 0)], maps=maps)
    shown_frames, columns = pictures._shown_frames, []
    monkeypatch.setattr(pictures, "_shown_frames", lambda *args: columns.extend(shown_frames(*args)) or columns)
    width, height = pictures.attention_picture(torch.randn(3, 8, 16, 16), block, tmp_path / "p.png", frames=4, dpi=32)
    assert columns == [0, 2, 5, 6] and shown_frames(8, [0], 4) == [0, 2, 5, 7]  # the peak replaces frame 7
    with Image.open(tmp_path / "p.png") as image:
        assert image.size == (width, height) == (4 * 64, 64)
