"""``model.compile: true``: the network is compiled in place in ``setup`` (checkpoint keys unchanged) and
trains under torch.compile with no graph break; ``model.compile_mode: reduce-overhead`` (CUDA graphs)
in bf16-mixed, on one process and under DDP. The AOT-autograd "aot_eager" backend traces forward and
backward as inductor would, without the minutes of C++ compilation; CUDA graphs themselves need a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch._dynamo
from training_fixtures import (  # noqa: F401
    ROOT, SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos,
)

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


def _loads_into_a_plain_model(checkpoint: Path) -> None:
    """The checkpoint's network loads strictly into an uncompiled model with plain nn.Conv3d."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    plain = create("slow_r50", num_classes=3, width=4, depths=(1, 1, 1, 1), conv_levers="none")
    plain.load_state_dict({k.removeprefix("model."): v for k, v in saved["state_dict"].items()}, strict=True)
    assert saved["hyper_parameters"]["compile_mode"] == "reduce-overhead"


# The CLI with nn.Module.compile on aot_eager (a mode is a backend's option: recorded, then dropped), each
# process's compile calls and CUDA-graph step marks written to a file (Lightning starts the second process by
# running this same script again).
COMPILE_RECORDING_CLI = """
import json, os, sys
import torch
original = torch.nn.Module.compile

def record(*line):
    with open(os.environ["COMPILE_CALLS"], "a") as f:
        f.write(json.dumps(line) + "\\n")

def compile_with_aot_eager(self, *args, **kwargs):
    record("compile", type(self).__name__, kwargs)
    kwargs.pop("mode", None)
    return original(self, *args, **kwargs, backend="aot_eager")

torch.nn.Module.compile = compile_with_aot_eager
torch.compiler.cudagraph_mark_step_begin = lambda: record("step")
from gcvideo.cli.main import main
sys.exit(main())
"""

REDUCE_OVERHEAD = ["--model.compile=true", "--model.compile_mode=reduce-overhead", "--trainer.precision=bf16-mixed",
                   "--model.preset=slow_r50", "--model.depths=[1, 1, 1, 1]", "--model.conv_levers=auto",
                   "--trainer.max_steps=2", "--trainer.limit_val_batches=0"]


@pytest.mark.slow
def test_reduce_overhead_fit_in_bf16_on_two_processes(tiny_videos, tmp_path):
    """compile_mode "reduce-overhead" (CUDA graphs on a GPU) under DDP (2 CPU processes, gloo) and bf16-mixed:
    each process compiles its network in place with the mode, each training batch starts a new graph
    iteration, and the checkpoint loads without torch.compile or the levers."""
    (tmp_path / "cli.py").write_text(COMPILE_RECORDING_CLI)
    args = [sys.executable, str(tmp_path / "cli.py"), "fit", "--config", str(SYNTH_VIDEO_CONFIG),
            *TINY_VIDEO_OVERRIDES, f"--data.init_args.root={tiny_videos}", *REDUCE_OVERHEAD,
            "--trainer.devices=2", "--trainer.strategy=ddp", *run_dir_args(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT),
           "COMPILE_CALLS": str(tmp_path / "calls.txt")}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = [json.loads(line) for line in (tmp_path / "calls.txt").read_text().splitlines()]
    compiled = ["compile", "SlowResNet", {"dynamic": False, "mode": "reduce-overhead"}]
    assert [c for c in calls if c[0] == "compile"] == [compiled] * 2
    assert calls.count(["step"]) == 2 * 2  # two steps on each process
    _loads_into_a_plain_model(tmp_path / "checkpoints" / "last.ckpt")


def test_classifier_passes_the_levers_and_checks_the_mode():
    from gcvideo.layers.conv_paths import PathConv3d
    from gcvideo.training import Classifier

    module = Classifier("slow_r50", num_classes=3, width=4, conv_levers="temporal=matmul")
    paths = {m.kind: m.path for m in module.model.modules() if isinstance(m, PathConv3d)}
    assert paths == {"stem": "conv3d", "pointwise": "conv3d", "downsample": "conv3d", "spatial": "conv3d",
                     "temporal": "matmul"}
    with pytest.raises(ValueError, match="compile_mode must be one of .*'reduce-overhead'"):
        Classifier("slow_r50", num_classes=3, width=4, compile_mode="fast")
    with pytest.raises(ValueError, match="conv_levers 'spatial=matmul'"):
        Classifier("slow_r50", num_classes=3, width=4, conv_levers="spatial=matmul")
