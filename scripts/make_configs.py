"""Writes every config under configs/ from one recipe template per family plus each row's differences, so
the rows of a family state one recipe in one wording (one LightningCLI file per row of GCNet's tables, Cao et
al., arXiv 1904.11492, Sec. 5; the Kinetics recipe is SlowFast 8x8, Feichtenhofer et al., arXiv 1812.03982).

The files stay complete, so ``gcvideo fit --config configs/kinetics400/slow_r50_gc5.yaml`` reads one file
and a grep finds every setting. A template (``configs/templates/<family>.yaml.in``) is such a file with
placeholders: ``{{name}}`` inside a line takes a one-line value; a line holding only ``{{name}}`` takes a
block of lines at its indentation and vanishes when the block is empty. A row gives the values where it
differs from its family; every placeholder needs a value and every value a placeholder. Every written file
starts with one line naming its template and row.

    python scripts/make_configs.py           # write the configs
    python scripts/make_configs.py --check   # write nothing; exit 1 naming each file that differs
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = "configs/templates"
INLINE = re.compile(r"\{\{(\w+)\}\}")
BLOCK = re.compile(r"( *)\{\{(\w+)\}\}")

VIDEO_TITLES = {
    "slow_r50": "baseline (Slow-only R50 8x8)",
    "slow_r50_nl5": "+ 5 NL blocks (res3: 1,3; res4: 1,3,5, after the block)",
    "slow_r50_snl5": "+ 5 SNL blocks in the NL positions",
    "slow_r50_gc5": "+ 5 GC blocks (r = 1/4) in the NL positions",
    "slow_r50_gc_all": "+ GC (r = 1/4) in every residual block of res3-res5",
}
IMAGE_TITLES = {
    "resnet50": "ResNet-50 baseline",
    "resnet50_gc_r16": "+ GC r16 in every bottleneck of c3-c5",
    "resnet50_gc_r4": "+ GC r4 in every bottleneck of c3-c5",
    "resnet50_snl": "+ SNL in every bottleneck of c3-c5",
}
INIT_FROM_FORMATS = "# a gcvideo .ckpt, a pytorchvideo .pyth (SLOW_8x8_R50.pyth) or an exported .safetensors"


def snippet(name: str) -> str:
    """A block shared by several templates: ``configs/templates/<name>.yaml.in``."""
    return (ROOT / TEMPLATES / f"{name}.yaml.in").read_text()


@dataclass(frozen=True)
class Family:
    """Rows of one table trained by one recipe: ``configs/<folder>/<row>.yaml`` from one template."""

    template: str  # file name under configs/templates
    folder: str  # output folder under configs
    titles: Mapping[str, str]  # preset -> what the row adds to the baseline, for the first comment line
    rows: Mapping[str, Mapping[str, str]]  # file stem -> the values where the row differs from `shared`
    shared: Mapping[str, str] = field(default_factory=dict)  # the values every row takes unless it gives its own

    def values(self, row: str) -> dict[str, str]:
        """Every placeholder value of ``row``: its name, preset (the name unless given) and title, the
        family's shared values, then its own."""
        own = self.rows[row]
        preset = own.get("preset", row)
        return {"name": row, "preset": preset, "title": self.titles[preset], **self.shared, **own}


def families() -> list[Family]:
    """The four families of configs; the order is the order of ``--check``'s report."""
    compile_note = snippet("compile_note")
    kinetics_finetune = {
        "preset": "slow_r50_gc5",
        "about": "# Fine-tuned from the trained Slow-only R50 baseline (model.init_from): the GC blocks are\n"
                 "# zero-initialised, so step 0 reproduces the baseline exactly. Its schedule is gcvideo's\n"
                 "# choice, not a number from the paper: the recipe's optimiser at a tenth of the rate;\n"
                 "# data, batch and precision as the from-scratch recipe.",
        "init_from": f"{INIT_FROM_FORMATS}\ninit_from: runs/kinetics400/slow_r50/checkpoints/last.ckpt",
        "lr": "0.01", "max_epochs": "40", "warmup_epochs": "1", "schedule_source": "gcvideo's",
    }
    synthetic_finetune = {
        "preset": "slow_r50_gc5",
        "about": "# Fine-tuned from the trained synthetic baseline (run configs/synthetic/slow_r50.yaml first): the\n"
                 "# zero-initialised GC blocks start as the identity, so a lower rate without warm-up refines\n"
                 "# the baseline instead of restarting it.",
        "init_from": "init_from: runs/synthetic/slow_r50/checkpoints/last.ckpt",
        "lr": "0.001", "warmup_epochs": "0", "schedule_source": "fine-tuning",
    }
    quick_start = {"about": "# The quick start (scripts/quickstart.sh) trains and tests this config."}
    return [
        Family("kinetics400.yaml.in", "kinetics400", VIDEO_TITLES,
               rows={**{row: {} for row in VIDEO_TITLES}, "slow_r50_gc5_finetune": kinetics_finetune},
               shared={"about": "", "init_from": "", "lr": "0.1", "max_epochs": "196", "warmup_epochs": "34",
                       "schedule_source": "SlowFast's", "compile_note": compile_note}),
        Family("imagenet.yaml.in", "imagenet", IMAGE_TITLES, rows={row: {} for row in IMAGE_TITLES},
               shared={"compile_note": compile_note}),
        Family("synthetic_video.yaml.in", "synthetic", VIDEO_TITLES,
               rows={**{row: {} for row in VIDEO_TITLES}, "slow_r50_gc5": quick_start,
                     "slow_r50_gc5_finetune": synthetic_finetune},
               shared={"about": "", "init_from": "", "lr": "0.01", "warmup_epochs": "1",
                       "schedule_source": "every row trained from scratch"}),
        Family("synthetic_images.yaml.in", "synthetic", IMAGE_TITLES, rows={row: {} for row in IMAGE_TITLES}),
    ]


def fill(template: str, values: Mapping[str, str], where: str) -> str:
    """``template`` with its placeholders replaced by ``values``; ``where`` names the row in errors."""
    used: set[str] = set()

    def value(name: str) -> str:
        if name not in values:
            raise KeyError(f"{where}: no value for the placeholder {{{{{name}}}}}")
        used.add(name)
        return values[name]

    def inline(match: re.Match[str]) -> str:
        text = value(match[1])
        if "\n" in text:
            raise ValueError(f"{where}: {{{{{match[1]}}}}} sits inside a line, so its value must be one line")
        return text

    lines: list[str] = []
    for line in template.splitlines():
        block = BLOCK.fullmatch(line)
        if block:
            lines += [block[1] + part if part else part for part in value(block[2]).splitlines()]
        else:
            lines.append(INLINE.sub(inline, line))
    unused = sorted(set(values) - used)
    if unused:
        raise KeyError(f"{where}: values without a placeholder in the template: {', '.join(unused)}")
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    """Every generated config: its path under the repository (``configs/...``) -> its text."""
    out: dict[str, str] = {}
    for family in families():
        template = (ROOT / TEMPLATES / family.template).read_text()
        for row in family.rows:
            path = f"configs/{family.folder}/{row}.yaml"
            if path in out:
                raise KeyError(f"{path}: written by two families")
            header = (f"# Generated by scripts/make_configs.py (template {TEMPLATES}/{family.template}, "
                      f"row {row}); edit those, not this file.\n")
            out[path] = header + fill(template, family.values(row), f"{family.template}, row {row}")
    return out


def first_difference(path: str, want: str, have: str) -> str | None:
    """One line naming ``path`` and its first line where ``have`` (the file) differs from ``want``, or None."""
    wanted, had = want.splitlines(), have.splitlines()
    for number, (w, h) in enumerate(zip(wanted, had), start=1):
        if w != h:
            return f"{path}:{number}: the file has {h!r}, the generator writes {w!r}"
    if len(wanted) != len(had):
        number = min(len(wanted), len(had)) + 1
        what = "ends" if len(had) < len(wanted) else "has more lines"
        return f"{path}:{number}: the file {what} than the generator writes"
    if want != have:
        return f"{path}: the file differs from what the generator writes in its line endings or final newline"
    return None


def drift() -> list[str]:
    """One line per config under configs/ that differs from the generator's, is missing, or is not
    generated at all."""
    expected = render_all()
    problems = []
    for path, text in expected.items():
        file = ROOT / path
        if not file.is_file():
            problems.append(f"{path}: missing; the generator writes it")
            continue
        difference = first_difference(path, text, file.read_text())
        if difference:
            problems.append(difference)
    for file in sorted((ROOT / "configs").rglob("*.yaml")):
        path = file.relative_to(ROOT).as_posix()
        if path not in expected:
            problems.append(f"{path}: not generated by scripts/make_configs.py (give it a row there, or delete it)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each file that differs")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for line in problems:
            print(line)
        if problems:
            print("Edit configs/templates/ or the rows in scripts/make_configs.py, then run it.", file=sys.stderr)
        return 1 if problems else 0
    for path, text in render_all().items():
        file = ROOT / path
        if not file.is_file() or file.read_text() != text:
            file.write_text(text)
            print(f"wrote {path}")
    for line in drift():
        print(line)  # a config the generator does not write
    return 0


if __name__ == "__main__":
    sys.exit(main())
