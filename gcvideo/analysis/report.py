"""``stats.json`` and ``stats.md``: the per-block statistics as a table like GCNet's sec. 3.1 diagnosis."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

COLUMNS = (
    ("relative_output_norm", "‖output‖ / ‖input‖"),
    ("input", "input cos. dist."),
    ("output", "output cos. dist."),
    ("attention_cosine", "attention cos. dist."),
    ("attention_js", "attention JS (nats)"),
)


def _cell(value: dict[str, Any] | None, kind: str, column: str) -> str:
    if column.startswith("attention") and kind != "nl":
        return "- (one map)"
    if not value or value.get("mean") is None:
        return "-"
    return f"{value['mean']:.3g} ± {value['std']:.2g}"


def stats_markdown(result: dict[str, Any]) -> str:
    """The report's markdown: a header naming the model and data, then one row per block.

    Args:
        result: What ``gcvideo analyze`` writes to stats.json (``model``, ``clips``, ``blocks``, ...).
    """
    lines = [
        f"# Query-independence of the context blocks of `{result['model']}`",
        "",
        f"Checkpoint `{result['checkpoint']}`; {result['clips']} clips of `{result['data']}` "
        f"({result.get('skipped', 0)} skipped as undecodable); up to {result['pairs_per_clip']} random "
        f"position pairs per clip and block (seed {result['seed']}).",
        "",
        "Mean ± std over the sampled pairs of the cosine distance between the block's inputs at two positions, "
        "between what it adds there (output - input), and, for NL, between the attention maps of two query "
        "positions (cosine distance and Jensen-Shannon divergence in nats; at most ln 2 = 0.693). "
        "‖output‖ / ‖input‖ shows how much the block adds at all (0: still the identity it starts as). "
        "GCNet (arXiv 1904.11492, sec. 3.1): trained NL blocks show large input distances and near-zero "
        "output and attention distances, i.e. a query-independent global context. SNL and GC have one "
        "attention map for all queries by construction.",
        "",
        "| block | kind | grid | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, block in result["blocks"].items():
        grid = "x".join(str(s) for s in block.get("grid", [])) or "-"
        cells = [_cell(block.get(column), block["kind"], column) for column, _ in COLUMNS]
        lines.append(f"| `{name}` | {block['kind'].upper()} | {grid} | " + " | ".join(cells) + " |")
    pictures = result.get("pictures") or []
    if pictures:
        lines += ["", "Pictures (attention maps over the frames, query points marked):", ""]
        lines += [f"- [{Path(p).name}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(out_dir: str | Path, result: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``out_dir/stats.json`` and ``out_dir/stats.md``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "stats.json", out_dir / "stats.md"
    _write_atomic(json_path, json.dumps(result, indent=2) + "\n")
    _write_atomic(md_path, stats_markdown(result))
    return json_path, md_path
