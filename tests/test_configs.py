"""Every config parses (``--print_config``), and the Kinetics configs state the SlowFast 8x8 recipe
(arXiv 1812.03982) exactly."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

from gcvideo.cli.lightning_cli import GCVideoCLI, run_lightning_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
KINETICS = sorted((ROOT / "configs" / "kinetics400").glob("*.yaml"))


def test_there_is_a_config_for_every_row():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    video = ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    image = ["resnet50", "resnet50_gc_r16", "resnet50_gc_r4", "resnet50_snl"]
    for row in video:
        assert f"kinetics400/{row}.yaml" in names and f"synthetic/{row}.yaml" in names
    for row in image:
        assert f"imagenet/{row}.yaml" in names and f"synthetic/{row}.yaml" in names
    assert "kinetics400/slow_r50_gc5_finetune.yaml" in names


class _Parsed(Exception):
    pass


class _ParserOnly(GCVideoCLI):
    """Builds gcvideo's parser once (building it is the slow part) and stops before parsing."""

    def parse_arguments(self, parser, args) -> None:
        type(self).parser_ = parser
        raise _Parsed


@pytest.fixture(scope="module")
def parser():
    from lightning import LightningDataModule

    from gcvideo.training import Classifier

    with pytest.raises(_Parsed):
        _ParserOnly(Classifier, LightningDataModule, subclass_mode_data=True, args=["fit"],
                    save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False)
    return _ParserOnly.parser_


def test_print_config_prints_the_full_config():
    config = ROOT / "configs" / "kinetics400" / "slow_r50_gc5.yaml"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(out.getvalue())
    assert printed["model"]["preset"] == "slow_r50_gc5" and printed["checkpoint"]["save_last"] is True
    assert "dirpath" not in printed["checkpoint"]  # a link target: trainer.default_root_dir/checkpoints


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_config_parses(config, parser):
    cfg = parser.parse_args(["fit", "--config", str(config)])
    raw = yaml.safe_load(config.read_text())
    assert cfg.fit.model.preset == raw["model"]["preset"]
    assert cfg.fit.checkpoint.save_last is True
    assert cfg.fit.checkpoint.dirpath == str(Path(raw["trainer"]["default_root_dir"]) / "checkpoints")


@pytest.mark.parametrize("config", KINETICS, ids=lambda p: p.stem)
def test_kinetics_configs_state_the_slowfast_recipe(config):
    cfg = yaml.safe_load(config.read_text())
    trainer, model, data = cfg["trainer"], cfg["model"], cfg["data"]["init_args"]
    opt, sched = model["optimizer"]["init_args"], model["lr_scheduler"]["init_args"]
    clips = data["batch_size"] * trainer["devices"] * trainer["num_nodes"]
    assert clips == 64 and trainer["precision"] == "bf16-mixed"
    assert model["optimizer"]["class_path"] == "torch.optim.SGD"
    assert (opt["momentum"], opt["weight_decay"], model["dropout"], model["width"]) == (0.9, 1e-4, 0.5, 64)
    assert model["lr_scheduler"]["class_path"] == "gcvideo.training.WarmupCosineLR"
    assert "max_epochs" not in sched and sched["warmup_start_factor"] == 0.1  # the trainer's max_epochs rules
    assert (data["frames"], data["stride"], data["train_crop"], list(data["train_short_side"])) == (8, 8, 224, [256, 320])
    assert (data["test_clips"], data["test_crops"], data["test_crop"], data["test_short_side"]) == (10, 3, 256, 256)
    if "finetune" in config.stem:
        assert model["preset"] == "slow_r50_gc5" and model["init_from"]
    else:
        assert model["preset"] == config.stem
        assert (opt["lr"], trainer["max_epochs"], sched["warmup_epochs"]) == (0.1, 196, 34)


def test_synthetic_video_rows_share_one_recipe():
    """The mini table compares rows trained the same way: only the preset and the run folder differ."""
    rows = ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    cfgs = {row: yaml.safe_load((ROOT / "configs" / "synthetic" / f"{row}.yaml").read_text()) for row in rows}
    for row, cfg in cfgs.items():
        assert cfg["model"]["preset"] == row and cfg["trainer"]["default_root_dir"] == f"runs/synthetic/{row}"
        assert "max_epochs" not in cfg["model"]["lr_scheduler"]["init_args"]  # one source: trainer.max_epochs
        assert cfg["data"]["init_args"]["train_flip"] is False  # mirrored clips change class
    strip = lambda cfg: {**cfg, "model": {**cfg["model"], "preset": None},  # noqa: E731
                         "trainer": {**cfg["trainer"], "default_root_dir": None, "logger": None}}
    first = strip(cfgs[rows[0]])
    assert all(strip(cfg) == first for cfg in cfgs.values())
