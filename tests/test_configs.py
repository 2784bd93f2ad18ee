"""Every config parses (``--print_config``), the Kinetics configs state the SlowFast 8x8 recipe
(arXiv 1812.03982) exactly, and every config is what ``scripts/make_configs.py`` writes from its family's
template, so the rows of a family cannot drift apart."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from gcvideo.cli.lightning_cli import GCVideoCLI, run_lightning_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
KINETICS = sorted((ROOT / "configs" / "kinetics400").glob("*.yaml"))


def test_there_is_a_config_for_every_row():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    video = ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    image = ["resnet50", "resnet50_gc_r16", "resnet50_gc_r4", "resnet50_snl"]
    for row in video:
        assert f"kinetics400/{row}.yaml" in names and f"synthetic/{row}.yaml" in names
    for row in image:
        assert f"imagenet/{row}.yaml" in names and f"synthetic/{row}.yaml" in names
    assert "kinetics400/slow_r50_gc5_finetune.yaml" in names


class _Parsed(Exception):
    pass


class _ParserOnly(GCVideoCLI):
    """Builds gcvideo's parser once (building it is the slow part) and stops before parsing."""

    def parse_arguments(self, parser, args) -> None:
        type(self).parser_ = parser
        raise _Parsed


@pytest.fixture(scope="module")
def parser():
    from lightning import LightningDataModule

    from gcvideo.training import Classifier

    with pytest.raises(_Parsed):
        _ParserOnly(Classifier, LightningDataModule, subclass_mode_data=True, args=["fit"],
                    save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False)
    return _ParserOnly.parser_


def test_print_config_prints_the_full_config():
    config = ROOT / "configs" / "kinetics400" / "slow_r50_gc5.yaml"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(out.getvalue())
    assert printed["model"]["preset"] == "slow_r50_gc5" and printed["checkpoint"]["save_last"] is True
    assert "dirpath" not in printed["checkpoint"]  # a link target: trainer.default_root_dir/checkpoints


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_config_parses(config, parser):
    cfg = parser.parse_args(["fit", "--config", str(config)])
    raw = yaml.safe_load(config.read_text())
    assert cfg.fit.model.preset == raw["model"]["preset"]
    assert cfg.fit.checkpoint.save_last is True
    assert cfg.fit.checkpoint.dirpath == str(Path(raw["trainer"]["default_root_dir"]) / "checkpoints")


@pytest.mark.parametrize("config", KINETICS, ids=lambda p: p.stem)
def test_kinetics_configs_state_the_slowfast_recipe(config):
    cfg = yaml.safe_load(config.read_text())
    trainer, model, data = cfg["trainer"], cfg["model"], cfg["data"]["init_args"]
    opt, sched = model["optimizer"]["init_args"], model["lr_scheduler"]["init_args"]
    clips = data["batch_size"] * trainer["devices"] * trainer["num_nodes"]
    assert clips == 64 and trainer["precision"] == "bf16-mixed"
    assert model["optimizer"]["class_path"] == "torch.optim.SGD"
    assert (opt["momentum"], opt["weight_decay"], model["dropout"], model["width"]) == (0.9, 1e-4, 0.5, 64)
    assert model["lr_scheduler"]["class_path"] == "gcvideo.training.WarmupCosineLR"
    assert "max_epochs" not in sched and sched["warmup_start_factor"] == 0.1  # the trainer's max_epochs rules
    assert (data["frames"], data["stride"], data["train_crop"], list(data["train_short_side"])) == (8, 8, 224, [256, 320])
    assert (data["test_clips"], data["test_crops"], data["test_crop"], data["test_short_side"]) == (10, 3, 256, 256)
    if "finetune" in config.stem:
        assert model["preset"] == "slow_r50_gc5" and model["init_from"]
    else:
        assert model["preset"] == config.stem
        assert (opt["lr"], trainer["max_epochs"], sched["warmup_epochs"]) == (0.1, 196, 34)


def test_synthetic_video_rows_share_one_recipe():
    """The mini table compares rows trained the same way: only the preset and the run folder differ."""
    rows = ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    cfgs = {row: yaml.safe_load((ROOT / "configs" / "synthetic" / f"{row}.yaml").read_text()) for row in rows}
    for row, cfg in cfgs.items():
        assert cfg["model"]["preset"] == row and cfg["trainer"]["default_root_dir"] == f"runs/synthetic/{row}"
        assert "max_epochs" not in cfg["model"]["lr_scheduler"]["init_args"]  # one source: trainer.max_epochs
        assert cfg["data"]["init_args"]["train_flip"] is False  # mirrored clips change class
    strip = lambda cfg: {**cfg, "model": {**cfg["model"], "preset": None},  # noqa: E731
                         "trainer": {**cfg["trainer"], "default_root_dir": None, "logger": None}}
    first = strip(cfgs[rows[0]])
    assert all(strip(cfg) == first for cfg in cfgs.values())


@pytest.fixture
def make_configs(monkeypatch):
    """``scripts/make_configs.py`` as a module (a fresh one per test, so a test may point its ROOT elsewhere)."""
    spec = importlib.util.spec_from_file_location("make_configs", ROOT / "scripts" / "make_configs.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_configs", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_config_is_what_the_generator_writes(make_configs):
    problems = make_configs.drift()
    assert not problems, "\n".join([*problems, "edit configs/templates/, then: python scripts/make_configs.py"])
    written = make_configs.render_all()
    assert sorted(written) == [p.relative_to(ROOT).as_posix() for p in CONFIGS]
    for path, text in written.items():
        assert (ROOT / path).read_text() == text, path  # drift() compares the same, independently of its messages


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_each_config_says_in_its_first_line_what_it_is_generated_from(config):
    first = config.read_text().splitlines()[0]
    template = first.split("(template ")[1].split(",")[0]
    assert first.startswith("# Generated by scripts/make_configs.py (template configs/templates/")
    assert (ROOT / template).is_file() and f"row {config.stem});" in first


def test_check_names_the_file_and_first_line_of_a_hand_edit(make_configs, tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    make_configs.ROOT = tmp_path
    edited = tmp_path / "configs" / "kinetics400" / "slow_r50_gc5.yaml"
    lines = edited.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.strip() == "weight_decay: 0.0001") + 1
    lines[number - 1] = lines[number - 1].replace("0.0001", "0.0005")
    edited.write_text("".join(lines))
    (tmp_path / "configs" / "imagenet" / "resnet50.yaml").unlink()
    (tmp_path / "configs" / "kinetics400" / "by_hand.yaml").write_text("seed_everything: 1\n")
    problems = make_configs.drift()
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"configs/kinetics400/slow_r50_gc5.yaml:{number}: ") and "0.0005" in problems[0]
    assert problems[1].startswith("configs/imagenet/resnet50.yaml: missing")
    assert problems[2].startswith("configs/kinetics400/by_hand.yaml: not generated")
    assert make_configs.main(["--check"]) == 1
    make_configs.main([])  # rewrites the edited and the missing file; by_hand.yaml stays, and is reported
    assert make_configs.drift() == problems[2:]
    assert edited.read_text() == (ROOT / "configs" / "kinetics400" / "slow_r50_gc5.yaml").read_text()


def test_a_template_edit_reaches_every_row_of_its_family(make_configs, tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    make_configs.ROOT = tmp_path
    template = tmp_path / "configs" / "templates" / "kinetics400.yaml.in"
    template.write_text(template.read_text().replace("weight_decay: 0.0001", "weight_decay: 0.0002"))
    assert make_configs.main(["--check"]) == 1
    assert make_configs.main([]) == 0 and make_configs.drift() == []
    for config in sorted((tmp_path / "configs").rglob("*.yaml")):
        cfg = yaml.safe_load(config.read_text())
        before = yaml.safe_load((ROOT / config.relative_to(tmp_path)).read_text())
        if config.parent.name == "kinetics400":
            assert cfg["model"]["optimizer"]["init_args"]["weight_decay"] == 0.0002
            before["model"]["optimizer"]["init_args"]["weight_decay"] = 0.0002
        assert cfg == before, config.name  # nothing else changed, in no other file


def test_fill_places_values_inline_and_as_blocks_and_refuses_a_missing_or_unused_value(make_configs):
    template = "a: {{x}}  # {{x}}\nm:\n  {{block}}\n  c: 1\n  {{empty}}\n"
    filled = make_configs.fill(template, {"x": "2", "block": "# note\nd: 3", "empty": ""}, "t")
    assert filled == "a: 2  # 2\nm:\n  # note\n  d: 3\n  c: 1\n"
    with pytest.raises(KeyError, match="no value for the placeholder {{x}}"):
        make_configs.fill("a: {{x}}\n", {}, "t")
    with pytest.raises(KeyError, match="without a placeholder in the template: y"):
        make_configs.fill("a: {{x}}\n", {"x": "1", "y": "2"}, "t")
    with pytest.raises(ValueError, match="must be one line"):
        make_configs.fill("a: {{x}}\n", {"x": "1\n2"}, "t")


def test_kinetics_rows_trained_from_scratch_share_one_recipe():
    """Like the synthetic rows: only the preset and the run folder differ between the table's rows."""
    rows = ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    cfgs = {row: yaml.safe_load((ROOT / "configs" / "kinetics400" / f"{row}.yaml").read_text()) for row in rows}
    for row, cfg in cfgs.items():
        assert cfg["model"]["preset"] == row and cfg["trainer"]["default_root_dir"] == f"runs/kinetics400/{row}"

    def strip(cfg: dict) -> dict:
        return {**cfg, "model": {**cfg["model"], "preset": None}, "trainer": {**cfg["trainer"], "default_root_dir": None}}

    assert all(strip(cfg) == strip(cfgs["slow_r50"]) for cfg in cfgs.values())
