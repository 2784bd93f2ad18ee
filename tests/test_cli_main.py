"""The ``gcvideo`` dispatcher: help, unknown subcommands, and every tool module's interface."""

from __future__ import annotations

import argparse
import importlib

import pytest

from gcvideo.cli.main import LIGHTNING_SUBCOMMANDS, TOOLS, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in [*LIGHTNING_SUBCOMMANDS, *TOOLS]:
        assert name in out


def test_unknown_subcommand_names_the_valid_ones(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'trian'" in err and "fit" in err and "table" in err


@pytest.mark.parametrize("tool", list(TOOLS))
def test_tool_modules_follow_the_interface(tool):
    module = importlib.import_module(f"gcvideo.cli.{TOOLS[tool][0]}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert callable(module.run)


def test_bad_tool_option_is_an_argparse_error(capsys):
    assert main(["table", "--models", "resnet51"]) == 2  # argparse's exit status, returned
    assert "resnet51" in capsys.readouterr().err


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--debug" in out and "report" in out and "--version" in out
    assert main(["fit", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: gcvideo [options] fit")
