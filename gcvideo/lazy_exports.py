"""Package faces that import their modules on first use (PEP 562).

``gcvideo.data`` re-exports names from modules that need Lightning (the data modules) beside names that do
not (decoding, annotations): a face that imported them all would make ``gcvideo data check`` pay for
Lightning. A lazy face keeps ``from gcvideo.data import KineticsDataModule`` and configs'
``class_path: gcvideo.data.KineticsDataModule`` working while importing only the module a name lives in.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` serving each name of ``exports`` (name -> module) on first use.

    Example, in a package's ``__init__.py``::

        _EXPORTS = by_name({"gcvideo.data.decoding.decode": ("DecodeError", "decode_frames")})
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
    """

    def get(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(importlib.import_module(package), name, value)  # later lookups skip this function
        return value

    def names() -> list[str]:
        return sorted(exports)

    return get, names


def by_name(modules: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """``{module: (names...)}`` -> ``{name: module}``, the form ``lazy_exports`` reads."""
    return {name: module for module, names in modules.items() for name in names}
