"""The two options that follow the run folder, checked wherever they are given.

The command line links ``checkpoint.dirpath`` and ``trainer.logger.init_args.save_dir`` to the run folder
(``trainer.default_root_dir``): its checkpoints and logs live there. jsonargparse refuses a value for
``checkpoint.dirpath`` on the command line in words that do not say why, and replaces either one given in
a ``--config`` file without a word, so checkpoints and logs would not be where the file says. Both are
therefore read here from the command line and its ``--config`` files, and refused unless they name the
run folder's own, in one line saying what to set instead. Configs saved by a run do not hold them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcvideo.errors import UserError
from gcvideo.training.run_folder import checkpoint_dir, run_folder

# option -> the value it takes from trainer.default_root_dir
RUN_FOLDER_LINKS: dict[str, Callable[[str | None], str]] = {
    "checkpoint.dirpath": checkpoint_dir, "trainer.logger.init_args.save_dir": run_folder,
}

# (option, where it is given, value), e.g. ("checkpoint.dirpath", "--checkpoint.dirpath", "/tmp")
Given = list[tuple[str, str, Any]]


def option_values(args: list[str], key: str) -> list[str]:
    """Every value of ``--key`` on the command line ``args`` (``--key value`` or ``--key=value``), in order."""
    flag, values = f"--{key}", []
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg[len(flag) + 1:])
    return values


def last_option_value(args: list[str], key: str) -> str | None:
    """The last value of ``--key`` on the command line ``args``, as the parser takes it."""
    values = option_values(args, key)
    return values[-1] if values else None


def without_option(args: list[str], key: str) -> list[str]:
    """``args`` without ``--key value`` and ``--key=value``."""
    flag, out, skip = f"--{key}", [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def config_file_values(args: list[str], key: str) -> list[tuple[str, Any]]:
    """``(where, value)`` for each ``--config`` file in ``args`` that sets the dotted ``key``, in order."""
    return [found for path in option_values(args, "config") for found in _lookup_in_file(path, key)]


def _lookup_in_file(path: str, key: str) -> list[tuple[str, Any]]:
    """``[(where, value)]`` if the YAML file ``path`` sets the dotted ``key``; a file that does not load is
    left to the parser, which names it."""
    import yaml

    try:
        node = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return []
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    return [] if node is None else [(f"{key} in {path}", node)]


def given_run_folder_options(args: list[str]) -> Given:
    """Each value of a run-folder option in ``args`` and its ``--config`` files: per option, the files
    first, then the command line."""
    given: Given = []
    for key in RUN_FOLDER_LINKS:
        given += [(key, where, value) for where, value in config_file_values(args, key)]
        value = last_option_value(args, key)
        if value is not None:
            given.append((key, f"--{key}", value))
    return given


def arguments_to_parse(args: list[str]) -> list[str]:
    """``args`` for the parser: without ``--checkpoint.dirpath``, which the parser refuses without saying
    why (``check_run_folder_options`` checks it instead)."""
    if last_option_value(args, "checkpoint.dirpath") is None:
        return args
    return without_option(args, "checkpoint.dirpath")


def check_run_folder_options(given: Given, default_root_dir: str | None) -> None:
    """Refuse a run-folder option that names another folder than the run folder's own.

    Args:
        given: ``given_run_folder_options`` of the command line.
        default_root_dir: the parsed ``trainer.default_root_dir``.

    Raises:
        UserError: naming where the option is given and the folder it follows.
    """
    for key, where, value in given:
        used = RUN_FOLDER_LINKS[key](default_root_dir)
        if os.path.abspath(str(value)) != os.path.abspath(used):
            raise UserError(f"{where} follows trainer.default_root_dir (here {used}): the run folder "
                            f"holds the logs and checkpoints; set trainer.default_root_dir instead")
