"""``gcvideo.training.run_folder``: where a run's checkpoints go (the end-to-end cases of one run per run
folder are in test_cli_checks.py)."""

from __future__ import annotations

import os

from gcvideo.training.run_folder import checkpoint_dir, run_folder


def test_checkpoint_dir_is_fixed_under_the_run_folder(tmp_path):
    assert checkpoint_dir(str(tmp_path)) == str(tmp_path / "checkpoints")


def test_the_run_folder_defaults_to_the_working_directory_as_lightning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_folder(None) == os.getcwd() == str(tmp_path)
    assert checkpoint_dir(None) == str(tmp_path / "checkpoints")
    assert run_folder(str(tmp_path / "run")) == str(tmp_path / "run")
