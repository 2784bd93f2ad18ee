"""``gcvideo export``: a trained checkpoint's backbone to safetensors with its metadata.

    gcvideo export --ckpt runs/x/checkpoints/last.ckpt --out backbone.safetensors [--with-head]

The checkpoint is read with ``torch.load(weights_only=True)``; the output is written atomically and
loads back with ``gcvideo.models.load``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gcvideo.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="gcvideo training checkpoint (.ckpt)")
    parser.add_argument("--out", required=True, help="output file (.safetensors)")
    parser.add_argument("--with-head", action="store_true", help="keep the classifier (default: backbone only)")


def run(args: argparse.Namespace) -> int:
    from gcvideo.models.io import export_backbone, read_metadata
    from gcvideo.training.module import load_classifier

    if Path(args.out).suffix != ".safetensors":
        raise UserError(f"--out must end with .safetensors, got {args.out}")
    module = load_classifier(args.ckpt)
    hp = module.hparams
    out = export_backbone(module.model, args.out, with_head=args.with_head, class_names=hp.get("class_names"),
                          data_info=hp.get("data_info"))
    meta = read_metadata(out)
    print(f"exported {meta['build_args']['name']} (width {meta['build_args']['width']}, "
          f"{'with' if args.with_head else 'without'} head) to {out}")
    return 0
