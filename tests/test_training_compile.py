"""``model.compile: true``: the network is compiled in place in ``setup`` (checkpoint keys unchanged) and
trains under torch.compile with no graph break. The AOT-autograd "aot_eager" backend traces
forward and backward as inductor would, without the minutes of C++ compilation."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from training_fixtures import SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos  # noqa: F401

from gcvideo.cli.lightning_cli import run_lightning_cli
from gcvideo.models import create


@pytest.mark.slow
def test_compile_option_compiles_in_place_and_trains_without_graph_breaks(tiny_videos, tmp_path, monkeypatch):
    calls = []
    original = torch.nn.Module.compile

    def compile_with_aot_eager(self, *args, **kwargs):
        calls.append((type(self).__name__, kwargs))
        return original(self, *args, **kwargs, backend="aot_eager")

    monkeypatch.setattr(torch.nn.Module, "compile", compile_with_aot_eager)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    run_lightning_cli(["fit", "--config", str(SYNTH_VIDEO_CONFIG), *TINY_VIDEO_OVERRIDES,
                       f"--data.init_args.root={tiny_videos}", "--model.compile=true", "--model.channels_last=true",
                       "--model.preset=slow_r50_gc_all", "--model.depths=[1, 1, 1, 1]",  # 3 GC blocks, quick to trace
                       "--trainer.precision=bf16-mixed",  # as on GPUs: the blocks' backward is traced under autocast
                       "--trainer.max_steps=2", "--trainer.limit_val_batches=0",
                       *run_dir_args(tmp_path)])
    assert calls == [("SlowResNet", {"dynamic": False})]  # once, in place, static shapes
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 2 and saved["hyper_parameters"]["compile"] is True
    eager = create("slow_r50_gc_all", num_classes=3, width=4, depths=(1, 1, 1, 1))
    expected = {f"model.{k}" for k in eager.state_dict()}
    assert set(saved["state_dict"]) == expected  # no "_orig_mod." prefix: eager code loads it as is
