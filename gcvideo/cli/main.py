"""Entry point of the ``gcvideo`` command.

``fit``, ``validate``, ``test`` and ``predict`` go to LightningCLI; the other subcommands are small
argparse tools, each a module of this package with ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported lazily so ``gcvideo table`` does not pay for Lightning's import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# subcommand -> (module under gcvideo.cli, one-line help)
TOOLS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "write the embedded synthetic dataset (Kinetics layout, or images with --images)"),
    "table": ("table", "parameters and GMACs of every preset next to the paper's numbers"),
    "data": ("data", "check or benchmark a dataset: `gcvideo data check|bench`"),
    "export": ("export", "export a trained backbone to safetensors with its metadata"),
    "analyze": ("analyze", "attention query-independence statistics and pictures of a trained model"),
}


def _usage() -> str:
    lines = ["usage: gcvideo <subcommand> [options]", "", "training (LightningCLI; `gcvideo fit --help`):"]
    lines += [f"  {name}" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "tools:"]
    lines += [f"  {name:<10}{help_}" for name, (_, help_) in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command in LIGHTNING_SUBCOMMANDS:
        from gcvideo.cli.lightning_cli import run_lightning_cli

        run_lightning_cli([command, *rest])
        return 0
    if command not in TOOLS:
        valid = ", ".join([*LIGHTNING_SUBCOMMANDS, *TOOLS])
        print(f"gcvideo: unknown subcommand {command!r}; valid: {valid}", file=sys.stderr)
        return 2
    module_name, help_ = TOOLS[command]
    module = importlib.import_module(f"gcvideo.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=f"gcvideo {command}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
