"""The videos of a split as a few numpy columns, so that DataLoader workers share them.

A list of 240k Python records costs about 150 MiB per process, and every DataLoader worker slowly copies
it: reading an object writes its reference count, so each page of records a worker reads becomes that
worker's own (about +800 MiB per GPU process with 8 workers over an epoch). A ``VideoTable`` keeps
the same data in a handful of numpy arrays, which no read writes to, so the pages stay shared after the
fork:

- ``paths``: one UTF-8 buffer plus offsets (``StringColumn``);
- ``labels``: int32 class indices (-1: unknown, e.g. for ``predict``);
- ``columns``: optional per-video numbers, one 1-D numeric array each, e.g. the decode manifest's
  ``num_frames``, ``fps``, ``start``/``stop`` (the decodable range), ``rotation`` and ``backend``;
- ``rows``: optionally the source row of each video (for writing clean lists back in its format).

The table is a read-only ``Sequence[VideoRecord]`` for small uses (``table[i].path``, iteration); the
datasets read ``table.path(i)`` and ``table.labels[i]`` instead, which create no record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence, overload

import numpy as np

_ROW_SEPARATOR = "\x1f"  # the ASCII unit separator: no annotation field contains it


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: its path, its class index, and its source row (for the clean lists)."""

    path: str
    label: int
    row: tuple[str, ...] = ()


class StringColumn(Sequence[str]):
    """Strings stored as one UTF-8 buffer (uint8) and int64 offsets: string ``i`` is
    ``buffer[offsets[i]:offsets[i + 1]]``."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray) -> None:
        if buffer.dtype != np.uint8 or offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError("a StringColumn needs a uint8 buffer and at least one int64 offset")
        if offsets[0] != 0 or offsets[-1] != len(buffer) or bool((np.diff(offsets) < 0).any()):
            raise ValueError("StringColumn offsets must rise from 0 to the buffer's length")
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> StringColumn:
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()  # owned: no bytes object kept
        return cls(buffer, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} strings")
        index %= n
        return self.buffer[self.offsets[index]:self.offsets[index + 1]].tobytes().decode("utf-8")

    def take(self, indices: np.ndarray) -> StringColumn:
        """The strings at ``indices`` (gathered byte ranges, no Python string per row)."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, lengths = self.offsets[indices], self.offsets[indices + 1] - self.offsets[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return StringColumn(self.buffer[positions], offsets)

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes + self.offsets.nbytes


class VideoTable(Sequence[VideoRecord]):
    """Paths, labels and optional numeric columns of a split (see the module docstring).

    Args:
        paths: one path per video (a ``StringColumn`` or any strings).
        labels: class index per video.
        columns: optional per-video numeric columns by name (1-D, one value per video).
        rows: optional source row per video (tuples of strings).
    """

    def __init__(self, paths: StringColumn | Iterable[str], labels: Sequence[int] | np.ndarray, *,
                 columns: Mapping[str, np.ndarray] | None = None,
                 rows: StringColumn | Iterable[Sequence[str]] | None = None) -> None:
        self.paths = paths if isinstance(paths, StringColumn) else StringColumn.from_strings(paths)
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        if len(self.labels) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        if rows is not None and not isinstance(rows, StringColumn):
            rows = StringColumn.from_strings(_ROW_SEPARATOR.join(row) for row in rows)
        if rows is not None and len(rows) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(rows)} source rows")
        self.rows = rows
        self.columns: dict[str, np.ndarray] = {}
        for name, values in (columns or {}).items():
            self.add_column(name, values)

    @classmethod
    def from_records(cls, records: Iterable[VideoRecord]) -> VideoTable:
        records = list(records)
        rows = [r.row for r in records] if records and all(r.row for r in records) else None
        return cls([r.path for r in records], [r.label for r in records], rows=rows)

    def add_column(self, name: str, values: Sequence[float] | np.ndarray) -> None:
        """Add (or replace) a per-video numeric column, e.g. ``num_frames`` from a manifest."""
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != len(self) or array.dtype.kind not in "biuf":
            raise ValueError(f"column {name!r} must hold one number per video ({len(self)}), got "
                             f"shape {array.shape} of {array.dtype}")
        self.columns[name] = np.ascontiguousarray(array)

    def path(self, index: int) -> str:
        return self.paths[index]

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def row(self, index: int) -> tuple[str, ...]:
        return tuple(self.rows[index].split(_ROW_SEPARATOR)) if self.rows is not None else ()

    def __len__(self) -> int:
        return len(self.labels)

    @overload
    def __getitem__(self, index: int) -> VideoRecord: ...
    @overload
    def __getitem__(self, index: slice) -> VideoTable: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return VideoRecord(self.paths[index], int(self.labels[index]), self.row(index))

    def __iter__(self) -> Iterator[VideoRecord]:
        return (self[i] for i in range(len(self)))

    def take(self, indices: Sequence[int] | np.ndarray) -> VideoTable:
        """The videos at ``indices``, with all their columns."""
        indices = np.asarray(indices, dtype=np.int64)
        return VideoTable(self.paths.take(indices), self.labels[indices],
                          columns={k: v[indices] for k, v in self.columns.items()},
                          rows=self.rows.take(indices) if self.rows is not None else None)

    def records(self) -> list[VideoRecord]:
        """All videos as Python records (for small uses: each record is a Python object)."""
        return list(self)

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns."""
        return (self.paths.nbytes + self.labels.nbytes + sum(v.nbytes for v in self.columns.values())
                + (self.rows.nbytes if self.rows is not None else 0))

    def __repr__(self) -> str:
        return f"VideoTable({len(self)} videos, columns {sorted(self.columns)}, {self.nbytes / 2**20:.1f} MiB)"
