"""Entry point of the ``gcvideo`` command.

``fit``, ``validate``, ``test`` and ``predict`` go to LightningCLI; the other subcommands are small
argparse tools, each a module of this package with ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported lazily so ``gcvideo table`` does not pay for Lightning's import.

Mistakes in the user's input print one line, ``gcvideo <subcommand>: error: <what to fix>``, and exit
with status 2; tracebacks are for bugs. ``--debug`` (anywhere on the line) or ``GCVIDEO_DEBUG=1`` shows
the traceback of every error, and Lightning's informational messages and warnings. Ctrl-C exits with
status 130 after one line (``fit`` saves where it stopped first).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import warnings

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# subcommand -> (module under gcvideo.cli, one-line help)
TOOLS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "write the embedded synthetic dataset (Kinetics layout, or images with --images)"),
    "table": ("table", "parameters and GMACs of every preset next to the paper's numbers"),
    "data": ("data", "check, benchmark or re-encode a dataset: `gcvideo data check|bench|prepare|make-bench-videos`"),
    "export": ("export", "export a trained backbone to safetensors with its metadata"),
    "analyze": ("analyze", "attention query-independence statistics and pictures of a trained model"),
    "report": ("report", "training curves of a run folder (loss, lr, top-1 per epoch) as PNG and CSV"),
}

DEBUG_FLAG = "--debug"
DEBUG_ENV = "GCVIDEO_DEBUG"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gcvideo")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _usage() -> str:
    lines = ["usage: gcvideo [--version] [--debug] <subcommand> [options]", "",
             "training (LightningCLI; `gcvideo fit --help`):"]
    lines += [f"  {name}" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "tools:"]
    lines += [f"  {name:<10}{help_}" for name, (_, help_) in TOOLS.items()]
    lines += ["", f"errors in your input print one line; {DEBUG_FLAG} (or {DEBUG_ENV}=1) shows tracebacks and "
              "Lightning's messages"]
    return "\n".join(lines)


def debug_requested() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


def quiet_lightning() -> None:
    """Keep Lightning's tips, hardware banners and deprecation warnings (not the user's to fix) off the screen."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    libraries = r"(lightning|lightning_fabric|lightning_utilities|torch|torchvision|torchmetrics|pytorchvideo)(\.|$)"
    for category in (DeprecationWarning, FutureWarning):  # between these libraries: not the user's to fix
        warnings.filterwarnings("ignore", category=category, module=libraries)
    for message in (r".*LeafSpec.*", r".*does not have many workers.*", r".*smaller than the logging interval.*",
                    r".*`srun` command is available.*", r".*Checkpoint directory .* exists and is not empty.*",
                    r".*resuming from a checkpoint that ended before the epoch ended.*",
                    r".*recommended to use `self.log\('test/.*sync_dist=True.*"):  # synchronised by MultiViewAccuracy
        warnings.filterwarnings("ignore", message=message)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a mistake in the user's input (one line) rather than a bug (traceback).

    User errors: ``gcvideo.errors.UserError`` (raised by gcvideo for bad input, and for any ValueError,
    TypeError, KeyError or OSError while building the objects of a config), a path that does not exist,
    jsonargparse's parsing errors (unknown or mistyped options and config keys) and Lightning's
    ``MisconfigurationException`` (trainer settings that do not go together).
    """
    from gcvideo.errors import UserError

    if isinstance(error, (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return True
    kinds = {(cls.__module__.split(".")[0], cls.__name__) for cls in type(error).__mro__}
    return bool(kinds & {("jsonargparse", "ArgumentError"), ("argparse", "ArgumentError"),
                         ("lightning", "MisconfigurationException"),
                         ("lightning_fabric", "MisconfigurationException")})


def _condense_parser_message(text: str) -> str:
    """jsonargparse's nested "does not validate against any of the Union subtypes" report, as one line:
    the option, the value given and the reasons that are not "Expected a <class 'NoneType'>"."""
    key = re.match(r'\s*Parser key "([^"]+)":', text)
    given = re.search(r"^\s*Given value: (.*)$", text, re.MULTILINE)
    reasons: list[str] = []
    for line in text.splitlines():
        item = re.match(r"^(\s*)- (.*)$", line)
        if item:
            reasons.append(item.group(2).strip())
        elif reasons and reasons[-1].endswith(":") and line.strip():  # "Problem with given class_path 'X':"
            reasons[-1] += " " + line.strip()
    reasons = [re.sub(r"^Problem with given class_path '([^']+)': ", r"\1: ", r) for r in reasons
               if not r.startswith(("Expected a <class 'NoneType'>", "Does not validate against"))]
    specific = list(dict.fromkeys(r for r in reasons if not r.startswith("Expected a ")))
    if specific:
        message = "; ".join(specific)
    else:
        expected = " or ".join(r[len("Expected a "):] for r in reasons)
        value = given.group(1) if given else "the value"
        message = f"{value} is not accepted (expected {expected})"
    return f"{key.group(1)}: {message}" if key else message


def _one_line(error: BaseException) -> str:
    """The error's message on one line (jsonargparse's validation messages span many)."""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"no such file or directory: {error.filename}"
    text = str(error)
    if "Errors:" in text and "- " in text:
        text = _condense_parser_message(text)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    text = re.sub(r'^Parser key "([^"]+)":', r"\1:", text)
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text).replace("typing.", "")
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # a KeyError's repr
        text = text[1:-1]
    text = text or type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _run(command: str, rest: list[str]) -> int:
    if command in LIGHTNING_SUBCOMMANDS:
        from gcvideo.cli.lightning_cli import run_lightning_cli

        run_lightning_cli([command, *rest])
        return 0
    module_name, help_ = TOOLS[command]
    module = importlib.import_module(f"gcvideo.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=f"gcvideo {command}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if DEBUG_FLAG in argv:
        argv = [a for a in argv if a != DEBUG_FLAG]
        os.environ[DEBUG_ENV] = "1"  # also for the processes DDP starts from this command line
    debug = debug_requested()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"gcvideo {_version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in LIGHTNING_SUBCOMMANDS and command not in TOOLS:
        valid = ", ".join([*LIGHTNING_SUBCOMMANDS, *TOOLS])
        print(f"gcvideo: unknown subcommand {command!r}; valid: {valid}", file=sys.stderr)
        return 2
    if not debug:
        quiet_lightning()
    try:
        return _run(command, rest)
    except SystemExit as stop:  # --help, --print_config, and 130 after Ctrl-C during fit
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"gcvideo {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (sorted into user errors and bugs below)
        if debug or not is_user_error(error):
            raise
        print(f"gcvideo {command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
