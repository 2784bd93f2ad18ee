"""Progress bars that do not flood a log file.

On a terminal, tqdm redraws its bar in place ten times a second. Written to a file (a batch job, CI,
``cmd > log``), every redraw stays in the file; off a terminal, ``progress_bar`` redraws at most every
``interval`` seconds, so a long loop leaves a handful of updates instead of thousands.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Any = None, *, interval: float = 30.0, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, redrawn at most every ``interval`` s when stderr is not a terminal."""
    if not (kwargs.get("file") or sys.stderr).isatty():
        kwargs.setdefault("mininterval", interval)
    return tqdm(iterable, **kwargs)
