"""Initialise a network from published or earlier weights: e.g. an NL, SNL or GC model fine-tuned from
its trained baseline, whose zero-initialised blocks (GCNet, arXiv 1904.11492, Sec. 4) start as the identity.

Accepted files, recognised by content:
- a pytorchvideo / PySlowFast checkpoint (``.pyth``: a dict with ``model_state``), e.g. SLOW_8x8_R50.pyth;
- a torchvision ResNet-50 state dict (``.pth``), inflated to 3D for video models;
- a gcvideo training checkpoint (``.ckpt``: Lightning ``state_dict`` with ``model.`` prefixes);
- an exported backbone (``.safetensors``, see ``gcvideo.models.io``);
- any plain state dict (a ``module.`` / ``model.`` / ``network.`` prefix is stripped).
Pickled files are read with ``torch.load(weights_only=True)``. Keys that match in name and shape are
loaded, the rest are reported; the classifier is dropped when its class count differs. GC / SNL / NL
blocks are the identity at initialisation, so a baseline's weights give the baseline's outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gcvideo.errors import UserError

log = logging.getLogger(__name__)

_PREFIXES = ("module.", "model.", "network.")
INFLATE_MODES = ("centre", "mean")


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (``module.``, ``model.``, ``network.``) shared by every key."""
    changed = True
    while changed and state_dict:
        changed = False
        for prefix in _PREFIXES:
            if all(key.startswith(prefix) for key in state_dict):
                state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
                changed = True
    return state_dict


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Read the weights of ``path`` as a flat state dict; returns it and the recognised format."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu"), "gcvideo backbone (safetensors)"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        # Lightning checkpoint: the network lives under the module's attribute ``model``.
        state = {k[len("model.") :]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
        return strip_prefixes(state or obj["state_dict"]), "gcvideo / Lightning checkpoint"
    if "model_state" in obj:
        return strip_prefixes(obj["model_state"]), "pytorchvideo / PySlowFast checkpoint"
    if "model" in obj and isinstance(obj["model"], dict):
        return strip_prefixes(obj["model"]), "state dict under 'model'"
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(
            f"{path}: no weights found (expected 'state_dict', 'model_state', 'model' or a plain state dict; "
            f"top-level keys: {sorted(obj)[:10]})"
        )
    return strip_prefixes(tensors), "state dict"


def _is_2d_resnet(state_dict: dict[str, torch.Tensor]) -> bool:
    weight = state_dict.get("conv1.weight")
    return weight is not None and weight.ndim == 4 and "layer1.0.conv1.weight" in state_dict


def _inflate(state: dict[str, torch.Tensor], model: nn.Module, mode: str) -> dict[str, torch.Tensor]:
    """Rename torchvision keys to pytorchvideo's and inflate 2D kernels to the model's 3D shapes.

    Key by key with ``gcvideo.models.inflate``'s mapping, so that tensors which do not fit (another
    head, blocks the 2D file lacks) are reported by ``init_from`` instead of failing the whole load
    (``inflate_2d_to_3d`` is the strict version).
    """
    from gcvideo.models.inflate import inflate_weight, torchvision_to_pytorchvideo_key

    target = model.state_dict()
    out = {}
    for key, value in state.items():
        try:
            new_key = torchvision_to_pytorchvideo_key(key)
        except ValueError:
            out[key] = value  # no 3D counterpart: reported as unexpected
            continue
        shape = target.get(new_key, value).shape
        if new_key in target and value.dim() + 1 == len(shape):
            try:
                value = inflate_weight(value, shape, mode)
            except ValueError:
                pass  # reported as a shape mismatch
        out[new_key] = value
    return out


@dataclass
class InitReport:
    """What ``init_from`` did: loaded keys, and the model / file keys it could not use."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not (usable) in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # "key: file shape vs model shape"
    head_dropped: bool = False

    def summary(self) -> str:
        lines = [f"init_from: {self.source}: loaded {len(self.loaded)} tensors"]
        if self.head_dropped:
            lines.append("  classifier dropped (class count differs): it keeps its fresh initialisation")
        for name, keys in (("missing (kept fresh)", self.missing), ("unexpected (ignored)", self.unexpected),
                           ("shape mismatch (ignored)", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                lines.append(f"  {name}: {shown}")
        return "\n".join(lines)


def _require_every_tensor(report: InitReport, path: str | Path, model: nn.Module) -> None:
    """For evaluation: a tensor left at its initialisation would be scored as if it had been trained."""
    problems = [f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in (
        ("model tensors missing", report.missing), ("unexpected", report.unexpected),
        ("of another shape", report.mismatched)) if keys]
    if report.head_dropped:
        problems.insert(0, "its classifier has another number of classes")
    if problems:
        name = getattr(model, "build_args", {}).get("name", type(model).__name__)
        raise UserError(f"model.init_from {path} does not hold every weight of {name}: {'; '.join(problems)}; "
                        f"evaluating it would score untrained weights: give this model's own weights")


def init_from(model: nn.Module, path: str | Path, *, inflate: str = "centre", strict: bool = False) -> InitReport:
    """Load the matching weights of ``path`` into ``model`` (see the module docstring for the formats).

    Args:
        model: a network from ``gcvideo.models.create``.
        path: the weights file.
        inflate: how a 2D ResNet-50's kernels become temporal for video models: "centre" or "mean".
        strict: every tensor of the model must come from the file, and every tensor of the file must be
            used (evaluation: validate, test, predict); raises UserError otherwise, loading nothing.

    Returns:
        An ``InitReport``; its summary is also logged. Raises UserError when nothing matches.
    """
    if inflate not in INFLATE_MODES:
        raise ValueError(f"inflate must be one of {INFLATE_MODES}, got {inflate!r}")
    state, source = read_state_dict(path)
    if getattr(model, "is_video", False) and _is_2d_resnet(state):
        state = _inflate(state, model, inflate)
        source += f", inflated to 3D ({inflate})"
    report = InitReport(source=f"{path} ({source})")
    target = model.state_dict()
    head_prefix = getattr(model, "head_prefix", None)
    selected = {}
    for key, value in state.items():
        if key not in target:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            if head_prefix and key.startswith(head_prefix):
                report.head_dropped = True
            else:
                report.mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(target[key].shape)}")
        else:
            selected[key] = value
    if not selected:
        raise UserError(f"{path}: no tensor matches the model in name and shape ({report.summary()})")
    if report.head_dropped:  # drop the whole classifier, never half of it
        selected = {k: v for k, v in selected.items() if not k.startswith(head_prefix)}
    report.loaded = sorted(selected)
    report.missing = sorted(k for k in target if k not in selected)
    if strict:
        _require_every_tensor(report, path, model)
    model.load_state_dict(selected, strict=False)
    log.info(report.summary())
    return report
