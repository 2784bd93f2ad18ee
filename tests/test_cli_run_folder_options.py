"""``gcvideo.cli.run_folder_options``: the run-folder options read from the command line and its
``--config`` files, and refused unless they name the run folder's own (the end-to-end cases are in
test_cli_checks.py)."""

from __future__ import annotations

import os

import pytest
import yaml

from gcvideo.cli.run_folder_options import (
    arguments_to_parse,
    check_run_folder_options,
    given_run_folder_options,
    last_option_value,
    without_option,
)
from gcvideo.errors import UserError


def test_run_folder_options_in_either_form():
    args = ["fit", "--checkpoint.dirpath", "/a", "--x=1", "--checkpoint.dirpath=/b", "--y", "2"]
    assert last_option_value(args, "checkpoint.dirpath") == "/b"  # the last one, as the parser takes it
    assert without_option(args, "checkpoint.dirpath") == ["fit", "--x=1", "--y", "2"]
    assert last_option_value(["fit"], "checkpoint.dirpath") is None


def test_the_files_in_order_then_the_command_line(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump({"checkpoint": {"dirpath": "/one"}}))
    second.write_text(yaml.safe_dump({"checkpoint": {"dirpath": "/two"},
                                      "trainer": {"logger": {"init_args": {"save_dir": "/logs"}}}}))
    args = ["fit", "--config", str(second), f"--config={first}", "--checkpoint.dirpath=/three", "--x=1"]
    assert given_run_folder_options(args) == [
        ("checkpoint.dirpath", f"checkpoint.dirpath in {second}", "/two"),
        ("checkpoint.dirpath", f"checkpoint.dirpath in {first}", "/one"),
        ("checkpoint.dirpath", "--checkpoint.dirpath", "/three"),
        ("trainer.logger.init_args.save_dir", f"trainer.logger.init_args.save_dir in {second}", "/logs"),
    ]
    assert arguments_to_parse(args) == ["fit", "--config", str(second), f"--config={first}", "--x=1"]
    assert arguments_to_parse(["fit", "--x=1"]) == ["fit", "--x=1"]


def test_a_file_that_does_not_load_is_left_to_the_parser(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("checkpoint: [unclosed")
    assert given_run_folder_options(["fit", "--config", str(broken), "--config", str(tmp_path / "none.yaml")]) == []


def test_only_the_run_folders_own_folders_pass(tmp_path):
    run = tmp_path / "run"
    check_run_folder_options([("checkpoint.dirpath", "--checkpoint.dirpath", str(run / "checkpoints")),
                              ("trainer.logger.init_args.save_dir", "x", f"{run}/../run")], str(run))
    check_run_folder_options([("trainer.logger.init_args.save_dir", "x", os.getcwd())], None)  # Lightning's default
    with pytest.raises(UserError, match=rf"^--checkpoint.dirpath follows trainer.default_root_dir \(here "
                                        rf"{run / 'checkpoints'}\): the run folder holds"):
        check_run_folder_options([("checkpoint.dirpath", "--checkpoint.dirpath", str(run))], str(run))
