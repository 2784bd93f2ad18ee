"""Run one function over many files in worker processes, with a progress bar (the data tools' common loop).

``gcvideo synth``, ``gcvideo data make-bench-videos`` and ``gcvideo data prepare`` each write or re-encode
one video per job; this runs the jobs on all cores (or in this process for one worker, which keeps
tracebacks and profiles simple) and yields the results in job order as they finish.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterator, Sequence

from gcvideo.progress import progress_bar


def worker_count(requested: int | None, jobs: int) -> int:
    """``requested`` processes (default: every CPU), at least 1 and at most one per job."""
    return max(1, min(requested or os.cpu_count() or 1, jobs or 1))


def map_with_progress(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int | None, desc: str,
                      unit: str = "video", progress: bool = True, chunksize: int = 1) -> Iterator[tuple[Any, Any]]:
    """``(job, fn(job))`` for every job, in order, ``workers`` processes at a time, with a progress bar.

    ``fn`` must be a picklable top-level function. The bar is closed when the iterator is exhausted or
    dropped.
    """
    workers = worker_count(workers, len(jobs))
    with progress_bar(total=len(jobs), desc=desc, unit=unit, disable=not progress) as bar:
        if workers == 1:
            results = map(fn, jobs)
            for job, result in zip(jobs, results):
                bar.update()
                yield job, result
            return
        with ProcessPoolExecutor(workers) as pool:
            for job, result in zip(jobs, pool.map(fn, jobs, chunksize=chunksize)):
                bar.update()
                yield job, result
