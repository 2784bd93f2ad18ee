"""``gcvideo analyze``: are a trained model's attention maps query-independent? (GCNet sec. 3.1, fig. 1)

    gcvideo analyze --ckpt runs/synthetic/slow_r50_nl5/checkpoints/last.ckpt --root datasets/synthetic \
        [--split val] [--clips 16] [--pairs 1024] [--pictures 2] --out runs/analysis/nl5

Accepts a gcvideo training checkpoint (``.ckpt``, read with ``weights_only=True``) or an exported backbone
(``.safetensors`` from ``gcvideo export``, with or without its classifier, which the statistics do not
use). Input sizes default to the ones the model was trained with (stored in the
checkpoint). Writes ``OUT/stats.json``, ``OUT/stats.md`` and ``OUT/pictures/*.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from torch import nn

from gcvideo.data.decoding.decoders import DECODER_NAMES

DEFAULTS = {"frames": 8, "stride": 8, "crop": 224, "short_side": 256}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="gcvideo checkpoint (.ckpt) or exported backbone (.safetensors)")
    parser.add_argument("--out", required=True, help="output folder (stats.json, stats.md, pictures/)")
    data = parser.add_argument_group("data (video: Kinetics layout; image models: class folders)")
    data.add_argument("--root", required=True, help="dataset root (as for training, e.g. datasets/synthetic)")
    data.add_argument("--split", default="val", help="split read through the validation pipeline (default: val)")
    data.add_argument("--annotation-format", default="auto", help="video annotation format (default: auto)")
    data.add_argument("--decoder", default="auto", choices=DECODER_NAMES,
                      help="video decoder (default: auto, exact PyAV seeking; see docs/decoding.md)")
    for name, help_ in (("frames", "frames per clip"), ("stride", "frame stride"), ("crop", "centre crop size"),
                        ("short-side", "short side before the crop")):
        data.add_argument(f"--{name}", type=int, default=None, help=f"{help_} (default: from the checkpoint)")
    parser.add_argument("--clips", type=int, default=16, help="clips to analyse, a seeded random subset (default: 16)")
    parser.add_argument("--pairs", type=int, default=1024, help="position pairs per clip and block (default: 1024)")
    parser.add_argument("--pictures", type=int, default=2, help="clips whose attention maps are drawn (default: 2)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default: 4)")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers (default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of clip and pair sampling (default: 0)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")


def load_model(path: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a ``.ckpt`` or ``.safetensors`` file and its input conventions (``data_info``).

    Raises:
        ValueError: Missing file, or a file that is not a gcvideo checkpoint / does not fit its architecture.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        if file.suffix == ".safetensors":
            from gcvideo.models import load

            model = load(file)
            return model, dict(model.metadata)
        from gcvideo.training.module import load_classifier

        module = load_classifier(str(file))
        return module.model, dict(module.hparams.get("data_info") or {})
    except Exception as error:  # torch.load / safetensors / load_state_dict raise many types; name the file
        raise ValueError(
            f"{path}: cannot load a gcvideo model from it (a checkpoint of `gcvideo fit` or a file of "
            f"`gcvideo export` is needed, and its weights must fit the architecture): {error}"
        ) from error


def build_dataset(args: argparse.Namespace, model: nn.Module, info: dict[str, Any]):
    """The validation pipeline of the model's kind over ``--root``/``--split``."""
    def choose(name: str, *keys: str) -> int:
        given = getattr(args, name)
        stored = [info[key] for key in keys if info.get(key)]
        return int(given if given is not None else (stored + [DEFAULTS[name]])[0])

    pick = {"frames": choose("frames", "frames"), "stride": choose("stride", "stride"),
            "crop": choose("crop", "crop"), "short_side": choose("short_side", "test_short_side", "val_resize")}
    norm = {key: info[key] for key in ("mean", "std") if info.get(key)}
    if getattr(model, "is_video", True):
        from gcvideo.data import KineticsDataModule

        data = KineticsDataModule(args.root, frames=pick["frames"], stride=pick["stride"], batch_size=args.batch_size,
                                  num_workers=args.num_workers, val_short_side=pick["short_side"],
                                  val_crop=pick["crop"], decoder=args.decoder,
                                  # sampled as in training: by time when the checkpoint stores target_fps,
                                  # else by frame index (checkpoints without it, the synthetic configs)
                                  target_fps=info.get("target_fps"),
                                  annotation_format=args.annotation_format, val_split=args.split, **norm)
    else:
        from gcvideo.data import ImageFolderDataModule

        data = ImageFolderDataModule(args.root, batch_size=args.batch_size, num_workers=args.num_workers,
                                     val_resize=pick["short_side"], val_crop=pick["crop"], val_dir=args.split, **norm)
    data.setup("validate")
    return data.val_dataset


def run(args: argparse.Namespace) -> int:
    import torch

    from gcvideo.analysis.hooks import find_blocks
    from gcvideo.analysis.measure import measure
    from gcvideo.analysis.report import write_report

    try:
        model, info = load_model(args.ckpt)
        find_blocks(model)  # fail before touching the data when there is nothing to analyse
        dataset = build_dataset(args, model, info)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        result = measure(model, dataset, clips=args.clips, batch_size=args.batch_size, num_workers=args.num_workers,
                         pairs_per_clip=args.pairs, seed=args.seed, picture_clips=args.pictures,
                         picture_dir=Path(args.out) / "pictures", device=device)
    except (ValueError, FileNotFoundError) as error:
        print(f"gcvideo analyze: {error}", file=sys.stderr)
        return 2
    build = getattr(model, "build_args", {})
    result = {"checkpoint": str(args.ckpt), "model": build.get("name", type(model).__name__),
              "build_args": build, "data": f"{args.root} ({args.split})", **result}
    json_path, md_path = write_report(args.out, result)
    print(md_path.read_text())
    print(f"wrote {json_path}, {md_path} and {len(result['pictures'])} pictures in {Path(args.out) / 'pictures'}")
    return 0
