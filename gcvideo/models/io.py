"""Export a trained backbone to safetensors (``gcvideo export``), and load it back.

The file holds the network's state dict with pytorchvideo (video) / torchvision (image) key names, no
Lightning prefixes, optionally without the classifier, and string metadata: ``build_args`` (JSON kwargs
of ``gcvideo.models.create``), ``class_names`` (JSON list), ``with_head``, ``head_prefix``, and the input
conventions (``input``, ``frames``, ``stride``, ``crop``, ``test_crop``, ``mean``, ``std``; JSON values).
Writing goes through a temporary file and a rename, so a crash never leaves half a file; reading is
pickle-free.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gcvideo.errors import UserError

FORMAT = "gcvideo-backbone/1"


def export_backbone(model: nn.Module, path: str | os.PathLike, *, with_head: bool = False,
                    class_names: Sequence[str] | None = None, data_info: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (from ``gcvideo.models.create``) to ``path`` as safetensors with metadata.

    Args:
        model: the network; needs ``build_args`` and ``head_prefix``.
        path: output ``.safetensors`` file.
        with_head: keep the classifier (default: backbone only).
        class_names: names of the classifier outputs, in label order.
        data_info: input conventions (``gcvideo.training.describe_data``), one metadata entry each.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"export path must end with .safetensors, got {path}")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if not with_head:
        state = {k: v for k, v in state.items() if not k.startswith(model.head_prefix)}
    metadata = {"format": FORMAT, "build_args": json.dumps(model.build_args), "with_head": json.dumps(with_head),
                "head_prefix": model.head_prefix, "class_names": json.dumps(list(class_names or []))}
    reserved = set(metadata)
    for key, value in (data_info or {}).items():
        if key in reserved:
            raise ValueError(f"data_info key {key!r} clashes with a metadata entry")
        metadata[key] = json.dumps(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of an exported file, JSON values decoded (``head_prefix`` and ``format`` stay strings)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != FORMAT:
        raise UserError(f"{path}: not a gcvideo backbone (metadata format {raw.get('format')!r}, want {FORMAT!r})")
    return {k: (v if k in ("format", "head_prefix") else json.loads(v)) for k, v in raw.items()}


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], *, skip_prefix: str | None = None) -> None:
    """Raise UserError (a ValueError) listing every key that is missing, unexpected or of another shape.

    Keys of ``model`` starting with ``skip_prefix`` (the classifier of a backbone-only file) may be absent.
    """
    target = model.state_dict()
    missing = [k for k in target if k not in state and not (skip_prefix and k.startswith(skip_prefix))]
    unexpected = [k for k in state if k not in target]
    shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}"
              for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{name} ({len(keys)}): {', '.join(keys)}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
                 if keys]
        raise UserError("weights do not fit the architecture; " + "; ".join(parts))


class MissingClassifierError(RuntimeError):
    """A backbone exported without its classifier was asked for class scores."""


class MissingClassifier(nn.Module):
    """Stands in for the classifier of a backbone exported without it: calling it raises.

    A freshly initialised classifier would turn ``model(x)`` into confident-looking logits of random
    weights, labelled with the file's class names; this makes that call an error that says what to use.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise MissingClassifierError("this backbone was exported without its classifier: use "
                                     "model.forward_features(x) for features, or export with "
                                     "`gcvideo export --with-head` for class scores")


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the exported model from its metadata and load its weights strictly.

    A backbone-only file (exported without ``--with-head``) loads strictly on every non-classifier key;
    its classifier is a ``MissingClassifier``, so ``model.forward_features(x)`` gives the pooled features
    and ``model(x)`` raises instead of returning logits of untrained weights. The model gets a
    ``metadata`` dict attribute (class names, frames, stride, crop, mean, std, ...). Raises ValueError
    listing mismatched keys.
    """
    from safetensors.torch import load_file

    from gcvideo.models import create

    meta = read_metadata(path)
    model = create(**meta["build_args"])
    state = load_file(str(path), device=str(map_location))
    with_head = bool(meta["with_head"])
    check_state_dict(model, state, skip_prefix=None if with_head else model.head_prefix)
    model.load_state_dict(state, strict=with_head)
    if not with_head:
        parent, _, name = model.head_prefix.rstrip(".").rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, MissingClassifier())
    model.metadata = meta
    return model.to(map_location).eval()
