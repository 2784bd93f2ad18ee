"""``gcvideo export`` and ``gcvideo.models.load``: safetensors round trip with identical features,
backbone-only and with-head files, metadata, atomic writing, and errors that list mismatched keys."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gcvideo.cli.main import main as gcvideo
from gcvideo.models import create, load
from gcvideo.models.io import export_backbone, read_metadata
from gcvideo.training import Classifier

CLASSES = ["a", "b", "c"]
DATA_INFO = {"input": "video", "frames": 4, "stride": 4, "crop": 32, "mean": [0.45] * 3, "std": [0.225] * 3}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A gcvideo checkpoint as Lightning writes it (module hyperparameters + state dict), trained a bit."""
    torch.manual_seed(0)
    module = Classifier("slow_r50_gc5", num_classes=3, width=4, class_names=CLASSES, data_info=DATA_INFO)
    with torch.no_grad():  # non-trivial weights everywhere, including the zero-initialised GC convs
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "global_step": 1}, path)
    return path, module.eval()


def test_export_and_load_round_trip_gives_identical_features(checkpoint, tmp_path):
    path, module = checkpoint
    out = tmp_path / "backbone.safetensors"
    assert gcvideo(["export", "--ckpt", str(path), "--out", str(out)]) == 0
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed
    keys = load_file(str(out)).keys()
    assert not any(k.startswith(("model.", "blocks.5.proj.")) for k in keys)  # no Lightning prefix, no head
    assert "blocks.0.conv.weight" in keys and "blocks.2.res_blocks.1.attn_after_add.conv_mask.weight" in keys
    meta = read_metadata(out)
    assert meta["build_args"]["name"] == "slow_r50_gc5" and meta["class_names"] == CLASSES
    assert (meta["frames"], meta["stride"], meta["crop"], meta["mean"]) == (4, 4, 32, [0.45] * 3)
    assert meta["with_head"] is False
    model = load(out)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), module.model.forward_features(x))
    assert model.metadata["class_names"] == CLASSES
    # no classifier in the file: no class scores from a random one, but an error that says what to call
    with pytest.raises(RuntimeError, match=r"without its classifier: use model\.forward_features"):
        model(x)
    assert not any(k.startswith("blocks.5.proj.") for k in model.state_dict())


def test_export_with_head_gives_identical_logits(checkpoint, tmp_path):
    path, module = checkpoint
    out = tmp_path / "full.safetensors"
    assert gcvideo(["export", "--ckpt", str(path), "--out", str(out), "--with-head"]) == 0
    model = load(out)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), module.model(x))


def test_load_lists_mismatched_keys(checkpoint, tmp_path):
    _, module = checkpoint
    out = export_backbone(module.model, tmp_path / "b.safetensors", with_head=True, class_names=CLASSES)
    state = load_file(str(out))
    with safe_open(str(out), framework="pt") as f:  # keep the metadata, break the weights
        metadata = f.metadata()
    state.pop("blocks.0.conv.weight")
    state["blocks.1.res_blocks.0.branch2.conv_a.weight"] = torch.zeros(1, 2, 3)
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=metadata)
    with pytest.raises(ValueError) as info:
        load(bad)
    message = str(info.value)
    assert "missing (1): blocks.0.conv.weight" in message and "unexpected (1): extra.weight" in message
    assert "blocks.1.res_blocks.0.branch2.conv_a.weight: file (1, 2, 3)" in message


def test_export_rejects_other_files(tmp_path):
    model = create("resnet50", width=4, num_classes=3)
    with pytest.raises(ValueError, match="must end with .safetensors"):
        export_backbone(model, tmp_path / "x.pt")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain), metadata={"format": "other"})
    with pytest.raises(ValueError, match="not a gcvideo backbone"):
        load(plain)
    out = export_backbone(model, tmp_path / "img.safetensors", data_info={"input": "image", "crop": 32})
    assert json.loads(json.dumps(read_metadata(out)))["build_args"]["name"] == "resnet50"
    assert torch.equal(load(out).conv1.weight, model.conv1.weight)


def test_export_errors_are_one_line(tmp_path, capsys):
    def error_of(*args: str) -> str:
        assert gcvideo(["export", *args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1
        return lines[0]

    missing, garbage = tmp_path / "missing.ckpt", tmp_path / "b.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    out = str(tmp_path / "b.safetensors")
    assert error_of("--ckpt", str(missing), "--out", out) == f"gcvideo export: error: checkpoint not found: {missing}"
    assert error_of("--ckpt", str(garbage), "--out", str(tmp_path / "b.pt")) == \
        f"gcvideo export: error: --out must end with .safetensors, got {tmp_path / 'b.pt'}"
    assert error_of("--ckpt", str(garbage), "--out", out).startswith(
        f"gcvideo export: error: {garbage}: not a PyTorch checkpoint")
