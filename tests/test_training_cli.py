"""``gcvideo fit/test/predict`` end to end on tiny synthetic data: a fast_dev_run of every synthetic config
builds its preset, computes its loss and takes one step of its optimizer without saving anything, a short fit
learns, an interrupted fit resumes at the saved step with the saved optimizer state, predict writes
top-5 classes and features per video file."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from training_fixtures import ROOT, SYNTH_VIDEO_CONFIG, TINY_IMAGE_OVERRIDES, TINY_VIDEO_OVERRIDES, run_dir_args
from training_fixtures import tiny_videos  # noqa: F401  (a fixture)

from gcvideo.cli.lightning_cli import run_lightning_cli
from gcvideo.data.synthetic.images import write_image_dataset
from gcvideo.models import count_parameters, create
from gcvideo.training.provenance import compute_record

SYNTH_CONFIGS = sorted((ROOT / "configs" / "synthetic").glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory) -> Path:
    return write_image_dataset(tmp_path_factory.mktemp("tiny_images"), classes=3, train_per_class=4,
                               val_per_class=2, size=32, seed=0)


@pytest.fixture(scope="module")
def baseline_ckpt(tiny_videos, tmp_path_factory) -> Path:
    """A slow_r50 checkpoint (one tiny epoch), the fine-tune config's ``init_from``."""
    run = tmp_path_factory.mktemp("baseline")
    run_lightning_cli(["fit", "--config", str(ROOT / "configs/synthetic/slow_r50.yaml"), *TINY_VIDEO_OVERRIDES,
                       f"--data.init_args.root={tiny_videos}", "--trainer.max_epochs=1",
                       "--model.lr_scheduler.init_args.warmup_epochs=0",  # a 1-epoch run has no room for it
                       "--trainer.limit_val_batches=0", *run_dir_args(run)])
    return run / "checkpoints" / "last.ckpt"


class FastDevRunRecord(L.Callback):
    """Records what a fast_dev_run built and did: the weights it started from, its one batch, the gradients
    and learning rate the optimizer stepped with, the loss, and the weights after the step."""

    seen: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        FastDevRunRecord.seen = {"start": _copy_parameters(pl_module), "steps": 0,
                                 "optimizer": type(trainer.optimizers[0]).__name__}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # what the step's loss is recomputed from: the network, its input and the random state of its dropout
        FastDevRunRecord.seen.update(batch=batch, rng=torch.get_rng_state(), net=copy.deepcopy(pl_module.model))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        group = optimizer.param_groups[0]
        FastDevRunRecord.seen.update(
            before_step=_copy_parameters(pl_module),
            options={key: group[key] for key in ("lr", "initial_lr", "weight_decay")},
            grads={n: None if p.grad is None else p.grad.clone() for n, p in pl_module.named_parameters()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        FastDevRunRecord.seen["loss"] = outputs["loss"].detach().clone()
        FastDevRunRecord.seen["steps"] += 1

    def on_train_end(self, trainer, pl_module) -> None:
        FastDevRunRecord.seen.update(end=_copy_parameters(pl_module), global_step=trainer.global_step,
                                     logged_loss=trainer.callback_metrics["train/loss"].clone())


def _copy_parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _one_step(optimizer: str, options: dict, p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A parameter after the first step of the configs' optimizers, written out (torch.optim's documented
    updates): SGD with momentum (the buffer starts at the gradient) and coupled weight decay; AdamW, whose
    bias-corrected first step divides the gradient by its magnitude, with decoupled weight decay."""
    lr, decay = options["lr"], options["weight_decay"]
    if optimizer == "SGD":
        return p - lr * (grad + decay * p)
    assert optimizer == "AdamW", optimizer
    return p * (1 - lr * decay) - lr * grad / (grad.abs() + 1e-8)


@pytest.mark.parametrize("config", SYNTH_CONFIGS, ids=lambda p: p.stem)
def test_fast_dev_run_of_every_synthetic_config(config, tiny_videos, tiny_images, baseline_ckpt, tmp_path):
    image = "resnet50" in config.stem
    if image:
        args = [*TINY_IMAGE_OVERRIDES, f"--data.init_args.root={tiny_images}"]
    else:
        args = [*TINY_VIDEO_OVERRIDES, f"--data.init_args.root={tiny_videos}"]
    if "finetune" in config.stem:
        args.append(f"--model.init_from={baseline_ckpt}")
    FastDevRunRecord.seen = {}
    run_lightning_cli(["fit", "--config", str(config), *args, "--trainer.fast_dev_run=true", *run_dir_args(tmp_path),
                       "--trainer.callbacks+=test_training_cli.FastDevRunRecord"])
    seen, model_config = FastDevRunRecord.seen, yaml.safe_load(config.read_text())["model"]

    # the model is the config's preset at the overridden width, with the data's 3 classes
    expected = create(model_config["preset"], width=4, num_classes=3)
    shapes = {f"model.{name}": p.shape for name, p in expected.named_parameters()}
    assert {name: p.shape for name, p in seen["start"].items()} == shapes
    assert sum(p.numel() for p in seen["start"].values()) == count_parameters(expected)
    if "finetune" in config.stem:  # init_from: every weight of the trained baseline, the GC blocks new
        baseline = torch.load(baseline_ckpt, map_location="cpu", weights_only=True)["state_dict"]
        loaded = {n for n in seen["start"] if n in baseline}
        assert loaded and all(".attn_" in n for n in set(seen["start"]) - loaded)
        for name in loaded:
            assert torch.equal(seen["start"][name], baseline[name]), name

    # one batch of 4 clips of the configured size; the loss logged is its cross-entropy
    batch = seen["batch"]
    x = batch["image" if image else "video"]
    assert x.shape == ((4, 3, 32, 32) if image else (4, 3, 4, 32, 32)) and batch["label"].shape == (4,)
    torch.set_rng_state(seen["rng"])  # the same dropout mask as the step
    reference = torch.nn.functional.cross_entropy(seen["net"].train()(x), batch["label"])
    assert math.isfinite(float(seen["loss"]))
    torch.testing.assert_close(seen["loss"], reference, rtol=1e-5, atol=1e-6)
    assert float(seen["logged_loss"]) == pytest.approx(float(seen["loss"]), rel=1e-6)

    # one optimizer step of the configured optimizer: every weight moves as its update rule says
    optimizer = model_config["optimizer"]
    assert seen["optimizer"] == optimizer["class_path"].rsplit(".", 1)[1]
    assert seen["options"]["initial_lr"] == optimizer["init_args"]["lr"]
    assert seen["options"]["weight_decay"] == optimizer["init_args"]["weight_decay"]
    assert seen["steps"] == seen["global_step"] == 1
    for name, before in seen["before_step"].items():
        assert torch.equal(before, seen["start"][name]), name  # nothing changes the weights before the step
        grad = seen["grads"][name]
        after = before if grad is None else _one_step(seen["optimizer"], seen["options"], before, grad)
        torch.testing.assert_close(seen["end"][name], after, rtol=1e-5, atol=1e-7, msg=name)
    assert any(not torch.equal(seen["end"][n], seen["start"][n]) for n in seen["start"])

    # fast_dev_run saves nothing: no checkpoint anywhere in the run folder
    assert not list(tmp_path.rglob("*.ckpt"))
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def _fit(tiny_videos: Path, run: Path, *extra: str) -> None:
    run_lightning_cli(["fit", "--config", str(SYNTH_VIDEO_CONFIG), *TINY_VIDEO_OVERRIDES,
                       f"--data.init_args.root={tiny_videos}", *run_dir_args(run), *extra])


class _StopAfter(L.Callback):
    """Simulates a killed run: raise after ``steps`` optimizer steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.steps:
            raise RuntimeError("killed")


class _RecordStart(L.Callback):
    """Remembers the step and optimizer state the resumed run starts from."""

    seen: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        _RecordStart.seen = {"step": trainer.global_step,
                             "optimizer": copy.deepcopy(trainer.optimizers[0].state_dict()),
                             "weights": {k: v.clone() for k, v in pl_module.state_dict().items()}}


def test_interrupted_fit_resumes_at_the_saved_step(tiny_videos, tmp_path):
    # 12 training clips, batch 4: 3 steps per epoch; the run is killed during epoch 2 (after step 4).
    with pytest.raises(RuntimeError, match="killed"):
        _fit(tiny_videos, tmp_path, "--trainer.max_epochs=3", "--trainer.limit_val_batches=0",
             "--trainer.callbacks+=test_training_cli._StopAfter", "--trainer.callbacks.steps=4")
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)  # plain values only
    assert saved["global_step"] == 3 and saved["epoch"] == 0
    _fit(tiny_videos, tmp_path, "--trainer.max_epochs=3", "--trainer.limit_val_batches=0", "--ckpt_path=last",
         "--trainer.callbacks+=test_training_cli._RecordStart")
    seen = _RecordStart.seen
    assert seen["step"] == saved["global_step"]
    saved_opt = saved["optimizer_states"][0]["state"]
    assert saved_opt and set(seen["optimizer"]["state"]) == set(saved_opt)
    for key, state in saved_opt.items():  # every buffer of the optimizer (AdamW: step, exp_avg, exp_avg_sq)
        assert set(seen["optimizer"]["state"][key]) == set(state) and state
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(seen["optimizer"]["state"][key][name]), torch.as_tensor(value)), name
    for key, value in saved["state_dict"].items():
        assert torch.equal(seen["weights"][key], value), key
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 9 and final["epoch"] == 2
    # fit.json: one segment per command, the killed one kept up to its last step; their cost adds up
    record = json.loads((tmp_path / "fit.json").read_text())
    first, second = record["segments"]
    assert (first["steps"], first["clips"], second["steps"], second["clips"]) == (3, 12, 6, 24)
    assert first["resumed_from"] is None and second["resumed_from"] == str(last)
    assert record["train"]["listed"] == record["train"]["found"] == 12 and record["model"] == "slow_r50_gc5"
    compute = compute_record(tmp_path)
    assert compute["segments"] == 2 and compute["clips"] == 36 and compute["devices"] == 1
    assert compute["device_hours"] == pytest.approx((first["wall_s"] + second["wall_s"]) / 3600, abs=1e-6)
    assert compute["accelerator"] == "cpu" and compute["gpu_hours"] is None


def test_short_fit_beats_chance_and_multiview_test_reports(tiny_videos, tmp_path):
    """3 classes (moving left / right / up) from 12 clips: the model must learn them, checked on the
    training videos' 10x3 test views (the point is that training works, not generalisation)."""
    _fit(tiny_videos, tmp_path, "--trainer.max_epochs=16",
         "--model.dropout=0.0", "--data.init_args.test_split=train",  # the config's AdamW at lr 1e-2
         "--trainer.check_val_every_n_epoch=16")
    run_lightning_cli(["test", "--config", str(SYNTH_VIDEO_CONFIG), *TINY_VIDEO_OVERRIDES,
                       f"--data.init_args.root={tiny_videos}", "--data.init_args.test_split=train",
                       *run_dir_args(tmp_path), f"--ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}"])
    results = json.loads((tmp_path / "test" / "results.json").read_text())
    assert (results["videos"], results["missing"], results["views"]) == (12, 0, 30)
    assert results["top1"] > 0.6, results  # chance is 1/3
    lines = (tmp_path / "test" / "predictions.csv").read_text().splitlines()
    assert len(lines) == 13 and lines[0].startswith("video_index,path,label,status")
    rows = list(csv.DictReader(lines))
    assert {r["status"] for r in rows} == {"ok"}
    assert results["top1"] == sum(int(r["correct"]) for r in rows) / len(rows)  # the same videos, the same top-1


def test_predict_writes_top5_and_features_per_video_file(tiny_videos, baseline_ckpt, tmp_path):
    videos = sorted((tiny_videos / "videos" / "test").rglob("*.mp4"))[:2]
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"not a video")
    paths = json.dumps([str(v) for v in videos] + [str(bad)])
    common = ["predict", "--config", str(ROOT / "configs/synthetic/slow_r50.yaml"), *TINY_VIDEO_OVERRIDES,  # the checkpoint's
              f"--data.init_args.root={tiny_videos}", f"--data.init_args.predict_paths={paths}",
              "--data.init_args.predict_clips=2", *run_dir_args(tmp_path), f"--ckpt_path={baseline_ckpt}"]
    run_lightning_cli([*common, f"--prediction.output={tmp_path / 'p.jsonl'}"])
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["path"] for r in records] == json.loads(paths)
    assert [r["valid"] for r in records] == [True, True, False]
    names = (tiny_videos / "classnames.txt").read_text().split("\n")[:3]
    assert set(records[0]["classes"]) == set(names)  # 3 classes: top-5 lists all three
    assert sum(records[0]["probs"]) == pytest.approx(1.0, abs=1e-5)
    assert records[0]["probs"] == sorted(records[0]["probs"], reverse=True)
    run_lightning_cli([*common, "--prediction.mode=features", f"--prediction.output={tmp_path / 'f.safetensors'}"])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "f.safetensors"), framework="pt") as f:
        feats, valid = f.get_tensor("features"), f.get_tensor("valid")
        assert json.loads(f.metadata()["paths"]) == json.loads(paths)
    assert feats.shape == (3, 4 * 32) and valid.tolist() == [True, True, False]  # D = 32 x width


def test_describe_data_keeps_how_clips_are_sampled():
    """analyze and export rebuild the input pipeline from data_info: the sampling rate must travel with it
    (by time at 30 fps for Kinetics, by frame index for the synthetic configs)."""
    from types import SimpleNamespace

    from gcvideo.training.module import describe_data

    common = dict(frames=8, stride=8, val_crop=224, test_crop=256, test_short_side=256, mean=(0.45,) * 3,
                  std=(0.225,) * 3)
    assert describe_data(SimpleNamespace(**common, target_fps=30))["target_fps"] == 30.0
    assert describe_data(SimpleNamespace(**common, target_fps=None))["target_fps"] is None
    assert "target_fps" not in describe_data(SimpleNamespace(val_crop=224, val_resize=256))  # images
