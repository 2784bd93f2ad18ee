"""Does a weights file fit the model the config builds? One line naming both when it does not.

A gcvideo checkpoint (``.ckpt``: Lightning's ``hyper_parameters``) or export (``.safetensors``:
``build_args`` metadata) records the architecture it was trained as. Loading it into another one
either fails deep inside ``load_state_dict`` (``size mismatch for model.fc.weight``) or, worse, works:
the blocks of a GC model are the identity at initialisation, so a baseline's weights "fit" a GC
config, and an evaluation would report the baseline's top-1 as the GC model's. The config is the
source of truth: a file that records another preset, width, depth, block placement, number of classes
or class list stops the command, naming both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gcvideo.errors import UserError

# hyperparameter -> how the message calls it; these decide the tensors' names and shapes
ARCHITECTURE_KEYS = ("preset", "width", "depths", "blocks", "num_classes")


def _load_mapped(path: Path) -> dict[str, Any]:
    """A ``torch.save`` file read without copying its tensors into memory (only a few fields are needed)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a checkpoint (a {type(obj).__name__}, expected a dict)")
    return obj


def saved_architecture(path: str | Path) -> dict[str, Any] | None:
    """The architecture a gcvideo checkpoint or export records, or None for other files.

    Returns a dict with ``ARCHITECTURE_KEYS`` and ``class_names`` (None when not recorded).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from gcvideo.models.io import read_metadata

        try:
            meta = read_metadata(path)
        except ValueError:
            return None
        args = meta["build_args"]
        with_head = bool(meta.get("with_head"))
        return {"preset": args["name"], "width": args["width"], "depths": args["depths"], "blocks": args["blocks"],
                "num_classes": args["num_classes"] if with_head else None,
                "class_names": meta.get("class_names") or None, "with_head": with_head}
    hparams = _load_mapped(path).get("hyper_parameters")
    if not isinstance(hparams, Mapping) or "preset" not in hparams:
        return None
    return {key: hparams.get(key) for key in (*ARCHITECTURE_KEYS, "class_names")} | {"with_head": True}


def _normal(key: str, value: Any) -> Any:
    """Comparable form: tuples and lists alike, block specs as sorted JSON."""
    if value is None:
        return None
    if key == "depths":
        return [int(v) for v in value]
    if key == "blocks":
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _is_video(preset: str) -> bool | None:
    from gcvideo.models.presets import PRESETS

    return PRESETS[preset].video if preset in PRESETS else None


def describe(arch: Mapping[str, Any]) -> str:
    """``slow_r50_gc5 (video, width 8, 10 classes)``; depths and blocks only when not the preset's."""
    parts = []
    kind = _is_video(str(arch.get("preset")))
    if kind is not None:
        parts.append("video" if kind else "image")
    if arch.get("width") is not None:
        parts.append(f"width {arch['width']}")
    if arch.get("num_classes") is not None:
        parts.append(f"{arch['num_classes']} classes")
    if arch.get("depths") is not None and _normal("depths", arch["depths"]) != [3, 4, 6, 3]:
        parts.append(f"depths {_normal('depths', arch['depths'])}")
    if arch.get("blocks"):
        parts.append("custom block placement")
    return f"{arch.get('preset')} ({', '.join(parts)})"


def check_fits(path: str | Path, model_hparams: Mapping[str, Any], *, option: str = "--ckpt_path") -> None:
    """Raise UserError when the gcvideo file at ``path`` records another architecture or class list.

    Args:
        path: a gcvideo ``.ckpt`` or ``.safetensors``; other files pass (their tensors are checked on load).
        model_hparams: the ``Classifier`` hyperparameters the config built (``preset``, ``width``, ...).
        option: how the user gave ``path``, for the message.
    """
    saved = saved_architecture(path)
    if saved is None:
        return
    wanted = {key: model_hparams.get(key) for key in ARCHITECTURE_KEYS}
    saved_video, wanted_video = _is_video(str(saved["preset"])), _is_video(str(wanted["preset"]))
    if saved_video is not None and wanted_video is not None and saved_video != wanted_video:
        kind = "an image" if not saved_video else "a video"
        raise UserError(f"{option} {path} is {kind} checkpoint ({describe(saved)}) but the config builds "
                        f"{describe(wanted)}: give a checkpoint of this config, or the config it was trained with")
    differs = [key for key in ARCHITECTURE_KEYS
               if saved.get(key) is not None and _normal(key, saved[key]) != _normal(key, wanted[key])]
    if differs:
        raise UserError(f"{option} {path} holds {describe(saved)} but the config builds {describe(wanted)} "
                        f"(different {', '.join(differs)}): give a checkpoint of this config, or the config it "
                        f"was trained with")
    saved_names, wanted_names = saved.get("class_names"), model_hparams.get("class_names")
    if saved_names and wanted_names and list(saved_names) != list(wanted_names):
        first = next(i for i, (a, b) in enumerate(zip(saved_names, wanted_names)) if a != b)
        raise UserError(f"{option} {path} was trained on another class list than the data's (label {first}: "
                        f"{saved_names[first]!r} in the checkpoint, {wanted_names[first]!r} in the data): use the "
                        f"class-name file it was trained with")


def check_state_fits(path: str | Path, module: torch.nn.Module, *, option: str = "--ckpt_path") -> None:
    """For a Lightning checkpoint without gcvideo hyperparameters: its ``state_dict`` must match ``module``'s."""
    state = _load_mapped(Path(path)).get("state_dict")
    if not isinstance(state, Mapping):
        raise UserError(f"{option} {path}: not a Lightning checkpoint (no state_dict); for other weights "
                        f"use --model.init_from")
    target = module.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [f"{k}: {tuple(v.shape)} in the file, {tuple(target[k].shape)} in the model"
              for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if missing or unexpected or shapes:
        example = (shapes or missing or unexpected)[0]
        raise UserError(f"{option} {path} does not fit the model the config builds: {len(missing)} tensors missing, "
                        f"{len(unexpected)} unexpected, {len(shapes)} of another shape (e.g. {example})")
