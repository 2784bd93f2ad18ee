"""``gcvideo analyze`` end to end on a tiny trained NL checkpoint: stats.json equal to the statistics computed
directly from the blocks' full attention maps, stats.md, readable PNGs, the same statistics from an export."""

from __future__ import annotations

import json
import math
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


def _pair_cosine_distances(features: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between the rows of ``features`` (N, D) for every pair i < j, from the normalised Gram
    matrix; two zero rows are identical (0), a zero and a non-zero row orthogonal (1)."""
    features = features.double()
    zero = features.norm(dim=1) == 0
    unit = torch.nn.functional.normalize(features, dim=1)
    distance = 1.0 - unit @ unit.t()
    distance[zero[:, None] & zero[None, :]] = 0.0
    i, j = torch.triu_indices(len(features), len(features), offset=1)
    return distance[i, j]


def _pair_js(maps: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between the rows of ``maps`` (N, Nk) for every pair i < j, as
    ``H((p + q) / 2) - (H(p) + H(q)) / 2`` (softmax rows are positive: no 0 log 0)."""
    maps = maps.double()
    i, j = torch.triu_indices(len(maps), len(maps), offset=1)
    p, q = maps[i], maps[j]

    def entropy(d: torch.Tensor) -> torch.Tensor:
        return -(d * d.log()).sum(-1)

    return entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2


def _reference_statistics(ckpt: Path, data: Path) -> dict[str, dict[str, list[torch.Tensor]]]:
    """GCNet's sec. 3.1 statistics of every NL block over all position pairs of every validation clip,
    from the block's full attention maps (``NonLocalBlock.attention``) and its input and output seen by
    forward hooks registered here."""
    import argparse

    from gcvideo.cli.analyze import add_arguments, build_dataset, load_model
    from gcvideo.layers import NonLocalBlock

    model, info = load_model(str(ckpt))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dataset = build_dataset(parser.parse_args(["--ckpt", str(ckpt), "--root", str(data), "--out", "-"]), model, info)
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, NonLocalBlock)}
    values = {name: {key: [] for key in ("input", "output", "relative_output_norm", "attention_cosine",
                                         "attention_js")} for name in blocks}

    def measure(name: str):
        def hook(block: NonLocalBlock, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            x = inputs[0][0].flatten(1).t()  # (N, C)
            added = output[0].flatten(1).t() - x
            maps = block.attention(inputs[0])[0]  # (N, Nk)
            found = values[name]
            found["input"].append(_pair_cosine_distances(x))
            found["output"].append(_pair_cosine_distances(added))
            found["relative_output_norm"].append(added.double().norm(dim=1) / x.double().norm(dim=1).clamp_min(1e-12))
            found["attention_cosine"].append(_pair_cosine_distances(maps))
            found["attention_js"].append(_pair_js(maps))

        return hook

    handles = [block.register_forward_hook(measure(name)) for name, block in blocks.items()]
    with torch.no_grad():
        for index in range(len(dataset)):
            model.eval()(dataset[index]["video"].unsqueeze(0))
    for handle in handles:
        handle.remove()
    return values


def _sharpened(ckpt: Path, out: Path) -> Path:
    """The trained checkpoint with query-dependent NL blocks: after one tiny epoch its maps are still nearly
    uniform (JS ~1e-8 nats) and its BN scale near 0 (what a block adds is its BN bias, equal everywhere), so
    its statistics are float32 rounding noise. theta and phi x 40 sharpen the softmax; BN scale 1 and bias 0
    let the block add its attention's output."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    for key, value in saved["state_dict"].items():
        if key.endswith(("conv_theta.weight", "conv_phi.weight")):
            value.mul_(40.0)
        elif key.endswith("attn_after_add.norm.weight"):
            value.fill_(1.0)
        elif key.endswith("attn_after_add.norm.bias"):
            value.zero_()
    torch.save(saved, out)
    return out


def test_analyze_writes_stats_and_pictures(trained, tmp_path) -> None:
    data, trained_ckpt = trained
    ckpt = _sharpened(trained_ckpt, tmp_path / "sharp.ckpt")
    out = tmp_path / "analysis"
    # all 6 validation clips and every position pair (res3: 4x4x4 positions, 2016 pairs; res4: 4x2x2, 120),
    # so the statistics are exact means that a direct computation reproduces
    assert main(["analyze", "--ckpt", str(ckpt), "--root", str(data), "--clips", "6", "--pictures", "1",
                 "--pairs", "2016", "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["model"] == "slow_r50_nl5" and stats["clips"] == 6 and stats["skipped"] == 0
    assert stats["js_units"] == "nats"
    assert len(stats["blocks"]) == 5
    reference = _reference_statistics(ckpt, data)
    assert set(stats["blocks"]) == set(reference)
    for name, block in stats["blocks"].items():
        positions = math.prod(block["grid"])
        assert block["kind"] == "nl" and block["clips"] == 6
        assert block["grid"] == ([4, 4, 4] if name.startswith("blocks.2.") else [4, 2, 2])
        assert block["attention_js"]["pairs"] == 6 * positions * (positions - 1) // 2
        assert 0.0 <= block["attention_js"]["mean"] <= 0.7
        assert 0.0 <= block["input"]["mean"] <= 2.0
        for key, found in reference[name].items():
            expected = torch.cat(found)
            assert float(expected.mean()) > 1e-4, (name, key)  # far above float32 rounding
            assert block[key]["pairs"] == len(expected), (name, key)
            for statistic, value in (("mean", expected.mean()), ("std", expected.std(correction=0))):
                assert block[key][statistic] == pytest.approx(float(value), rel=1e-3, abs=1e-7), (name, key, statistic)
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
    backbone = {k: v for k, v in model.state_dict().items() if not k.startswith(model.head_prefix)}
    assert set(again.state_dict()) >= set(backbone)
    for key, value in backbone.items():
        assert torch.equal(again.state_dict()[key], value), key
    common = ["--root", str(data), "--clips", "2", "--pictures", "0"]
    assert main(["analyze", "--ckpt", str(exported), *common, "--out", str(tmp_path / "from_export")]) == 0
    assert main(["analyze", "--ckpt", str(ckpt), *common, "--out", str(tmp_path / "from_ckpt")]) == 0
    from_export, from_ckpt = (json.loads((tmp_path / run / "stats.json").read_text())
                              for run in ("from_export", "from_ckpt"))
    assert from_export["pictures"] == []
    # the same weights and inputs (the input conventions travel in the export's metadata): the same statistics
    assert from_export["blocks"] == from_ckpt["blocks"] and from_export["clips"] == from_ckpt["clips"] == 2


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
