"""The package's architecture as its imports show it: layers -> models -> data -> training -> cli, with
``gcvideo.data`` in subpackages that import only downward, and data tools that do not load Lightning."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gcvideo"

# A unit may import units of a lower rank only; units of one rank are independent of each other.
RANKS = {
    "gcvideo.errors": 0, "gcvideo.progress": 0, "gcvideo.lazy_exports": 0,
    "gcvideo.parallel": 1,
    "gcvideo.layers": 1,
    "gcvideo.models": 2,
    "gcvideo.data.decoding": 3, "gcvideo.data.annotations": 3,
    "gcvideo.data.clips": 4, "gcvideo.data.preparation": 4, "gcvideo.data.synthetic": 4,
    "gcvideo.data.bench": 5, "gcvideo.data.datamodules": 5,
    "gcvideo.data": 6,  # the face: it names the modules of its exports as strings, imports none
    "gcvideo.analysis": 6,
    "gcvideo.training": 7,
    "gcvideo.cli": 8,
    "gcvideo": 9,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The longest name in RANKS that ``module`` is or lies under."""
    while module not in RANKS:
        module = module.rsplit(".", 1)[0]
    return module


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) of every import in the file, also inside functions."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
    return found


def _gcvideo_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_imports_only_units_below_it():
    wrong = []
    for path in _gcvideo_files():
        source = _unit(_module_name(path))
        for line, target, _ in _imports(path):
            if target.startswith("gcvideo"):
                unit = _unit(target)
                if unit != source and not RANKS[unit] < RANKS[source]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {source} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_every_module_belongs_to_a_ranked_unit():
    assert all(_unit(_module_name(p)) in RANKS for p in _gcvideo_files())
    subpackages = {p.parent.name for p in (PACKAGE / "data").glob("*/__init__.py")}
    assert subpackages == {"decoding", "annotations", "clips", "preparation", "synthetic", "bench", "datamodules"}
    assert not [p.name for p in (PACKAGE / "data").glob("*.py") if p.name != "__init__.py"]


def test_no_private_name_is_imported_across_modules():
    wrong = [f"{p.relative_to(ROOT)}:{line}: {name} from {target}" for p in _gcvideo_files()
             for line, target, names in _imports(p) if target.startswith("gcvideo") and target != _module_name(p)
             for name in names if name.startswith("_")]
    assert not wrong, "\n".join(wrong)


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(done.stdout.split())


@pytest.mark.parametrize("subpackage", ["decoding", "annotations", "preparation", "synthetic", "bench", "clips"])
def test_the_data_tools_load_neither_lightning_nor_the_training_code(subpackage):
    modules = sorted(_module_name(p) for p in (PACKAGE / "data" / subpackage).glob("*.py"))
    loaded = _loaded_after("; ".join(f"import {m}" for m in [*modules, "gcvideo.data", "gcvideo.cli.data"]))
    assert {m for m in loaded if m.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric")} == set()
    assert not any(m.startswith(("gcvideo.training", "gcvideo.data.datamodules")) for m in loaded)


def test_the_data_face_serves_every_name_from_the_module_it_names():
    import gcvideo.data as data

    for name in data.__all__:
        value = getattr(data, name)
        module = data._EXPORTS[name]
        assert value is getattr(__import__(module, fromlist=[name]), name), name
    with pytest.raises(AttributeError, match="no attribute 'KineticsDatamodule'"):
        data.KineticsDatamodule  # noqa: B018  (a typo is an AttributeError, as on any module)
