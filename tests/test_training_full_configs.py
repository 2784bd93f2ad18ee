"""Every Kinetics-400 and ImageNet config starts training: ``gcvideo fit`` with the config as written (its
precision, bf16-mixed -> CPU autocast in bf16, and its channels_last model) for two steps, overriding only
the hardware (CPU, one device), the width (8) and the data (tiny synthetic videos and images)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from training_fixtures import ROOT, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos  # noqa: F401

from gcvideo.cli.lightning_cli import run_lightning_cli
from gcvideo.data.synthetic.images import write_image_dataset
from gcvideo.models import create

KINETICS = sorted((ROOT / "configs" / "kinetics400").glob("*.yaml"))
IMAGENET = sorted((ROOT / "configs" / "imagenet").glob("*.yaml"))
ON_CPU = [
    "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1", "--trainer.strategy=auto",
    "--trainer.sync_batchnorm=false", "--trainer.max_steps=2", "--trainer.limit_val_batches=0",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]
TINY_IMAGES = [
    "--data.init_args.batch_size=4", "--data.init_args.num_workers=0", "--data.init_args.train_crop=32",
    "--data.init_args.val_resize=32", "--data.init_args.val_crop=32",
]


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory) -> Path:
    return write_image_dataset(tmp_path_factory.mktemp("images"), classes=3, train_per_class=4, val_per_class=1,
                               size=32, seed=0)


@pytest.fixture(scope="module")
def kinetics_baseline(tiny_videos, tmp_path_factory) -> Path:
    """Two steps of the Kinetics slow_r50 config: its checkpoint starts the fine-tuning config."""
    run = tmp_path_factory.mktemp("slow_r50")
    _fit(ROOT / "configs" / "kinetics400" / "slow_r50.yaml", run, *TINY_VIDEO_OVERRIDES,
         f"--data.init_args.root={tiny_videos}")
    return run / "checkpoints" / "last.ckpt"


def _fit(config: Path, run: Path, *data: str) -> dict:
    run_lightning_cli(["fit", "--config", str(config), *ON_CPU, *data, "--model.width=8", *run_dir_args(run)])
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def _check(saved: dict, config: Path, video: bool) -> None:
    assert saved["global_step"] == 2, config.name
    hparams = saved["hyper_parameters"]
    assert hparams["channels_last"] and hparams["width"] == 8
    # the config's preset at width 8 with the tiny data's 3 classes: its tensors, by name and shape
    expected = create(yaml.safe_load(config.read_text())["model"]["preset"], width=8, num_classes=3).state_dict()
    assert {k: v.shape for k, v in saved["state_dict"].items()} == {f"model.{k}": v.shape for k, v in expected.items()}
    fmt = torch.channels_last_3d if video else torch.channels_last
    convs = [v for k, v in saved["state_dict"].items() if k.endswith("weight") and v.dim() == (5 if video else 4)
             and v.shape[-1] > 1]  # the k x k convolutions: channels_last differs from contiguous for them
    assert convs and all(v.is_contiguous(memory_format=fmt) for v in convs)


@pytest.mark.slow
@pytest.mark.parametrize("config", KINETICS, ids=lambda p: p.stem)
def test_every_kinetics_config_trains_two_steps_on_cpu(config, tiny_videos, kinetics_baseline, tmp_path):
    args = [*TINY_VIDEO_OVERRIDES, f"--data.init_args.root={tiny_videos}"]
    if "finetune" in config.stem:
        args.append(f"--model.init_from={kinetics_baseline}")
    _check(_fit(config, tmp_path, *args), config, video=True)


@pytest.mark.slow
@pytest.mark.parametrize("config", IMAGENET, ids=lambda p: p.stem)
def test_every_imagenet_config_trains_two_steps_on_cpu(config, tiny_images, tmp_path):
    _check(_fit(config, tmp_path, *TINY_IMAGES, f"--data.init_args.root={tiny_images}"), config, video=False)
