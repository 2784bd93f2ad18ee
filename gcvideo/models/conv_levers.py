"""Convolution levers of the video backbone (Slow-only ResNet, SlowFast arXiv 1812.03982, table 1): each
``nn.Conv3d`` with a unit kernel dimension becomes a :class:`gcvideo.layers.conv_paths.PathConv3d` that
holds the same parameters (names, shapes, tensors), so state dicts, pytorchvideo's and inflated
torchvision checkpoints load strictly, and computes the same maths along a cheaper path.

The ``conv_levers`` option (``create(..., conv_levers=...)``, ``model.conv_levers`` in the configs):

- ``"auto"``: each convolution takes the path ``gcvideo.layers.conv_paths.POLICY`` picks for its input's
  device, dtype and memory layout (the measured table), F.conv3d where no rule applies;
- ``"none"``: plain ``nn.Conv3d`` everywhere, the network as pytorchvideo builds it;
- ``"kind=path,..."``: those paths forced for those kinds, F.conv3d for the other kinds (for measuring one
  lever alone), e.g. ``"pointwise=matmul,downsample=matmul"``; kinds and paths are those of
  ``gcvideo.layers.conv_paths.KIND_PATHS``.
"""

from __future__ import annotations

import torch
from torch import nn

from gcvideo.layers import BLOCKS
from gcvideo.layers.conv_paths import KIND_PATHS, PathConv3d, choose_path, conv_kind

MODES = ("auto", "none")


def parse_levers(levers: str) -> dict[str, str] | str:
    """``"auto"`` or ``"none"`` as they are, or ``"kind=path,..."`` as a dict; ValueError naming the valid
    values for anything else."""
    text = str(levers).strip()
    if text in MODES:
        return text
    forced: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, path = (s.strip() for s in item.partition("="))
        if not sep or kind not in KIND_PATHS or path not in KIND_PATHS[kind] or kind in forced:
            valid = "; ".join(f"{k}={'|'.join(p)}" for k, p in KIND_PATHS.items())
            raise ValueError(f"conv_levers {levers!r}: expected 'auto', 'none' or comma-separated kind=path "
                             f"(each kind once) from: {valid}")
        forced[kind] = path
    if not forced:
        raise ValueError(f"conv_levers {levers!r}: expected 'auto', 'none' or kind=path pairs")
    return forced


def _kinds(model: nn.Module) -> dict[str, str]:
    """Module name -> kind of every backbone convolution a lever applies to; the first one (on the clip) is
    the stem. The attention blocks' own 1x1x1 convolutions act on pooled (B, C, 1, 1, 1) contexts or through
    weight views, and keep theirs."""
    kinds: dict[str, str] = {}
    first = True
    blocks = tuple(BLOCKS.values())
    inside = {m for block in model.modules() if isinstance(block, blocks) for m in block.modules()}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv3d) and module not in inside:
            kind = module.kind if isinstance(module, PathConv3d) else conv_kind(module)
            if kind is not None:
                kinds[name] = "stem" if first and kind == "spatial" else kind
            first = False
    return kinds


def apply_conv_levers(model: nn.Module, levers: str = "auto") -> nn.Module:
    """Set the convolution paths of ``model`` in place (see the module docstring); returns ``model``.

    Convolutions become ``PathConv3d`` sharing their parameters; ``"none"`` on a model that has them sets
    every path to "conv3d". Models without ``nn.Conv3d`` (the image ResNet) are returned unchanged.
    """
    spec = parse_levers(levers)
    for name, kind in _kinds(model).items():
        path = "conv3d" if spec == "none" else "auto" if spec == "auto" else spec.get(kind, "conv3d")
        module = model.get_submodule(name)
        if isinstance(module, PathConv3d):
            module.path = path
        elif spec != "none":
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, PathConv3d.from_conv(module, kind, path))
    return model


def lever_paths(model: nn.Module, device: str, dtype: torch.dtype, layout: str) -> dict[str, str]:
    """Kind -> the path the model's convolutions of that kind take on inputs of ``device`` (a device type),
    ``dtype`` and ``layout`` ("contiguous" or "channels_last"); "conv3d" for plain ``nn.Conv3d``."""
    paths: dict[str, str] = {}
    for name, kind in _kinds(model).items():
        module = model.get_submodule(name)
        path = module.path if isinstance(module, PathConv3d) else "conv3d"
        paths[kind] = choose_path(kind, device, dtype, layout) if path == "auto" else path
    return paths
