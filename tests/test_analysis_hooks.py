"""Hooks on NL/SNL/GC blocks: sampled attention rows and statistics on hand-built blocks (GCNet sec. 3.1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gcvideo.analysis.hooks import StatisticsCollector, find_blocks, nl_attention_rows, picture_queries
from gcvideo.layers import GlobalContextBlock, NonLocalBlock, SimplifiedNonLocalBlock


def _randomised(block: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in block.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return block.eval()


@pytest.mark.parametrize(
    "dim, pool, instantiation",
    [(3, True, "softmax"), (3, False, "softmax"), (2, True, "softmax"), (3, True, "dot_product")],
)
def test_sampled_rows_equal_full_attention(dim: int, pool: bool, instantiation: str) -> None:
    block = _randomised(NonLocalBlock(8, dim=dim, pool=pool, instantiation=instantiation))
    spatial = (2, 6, 4) if dim == 3 else (6, 4)
    x = torch.randn(2, 8, *spatial, generator=torch.Generator().manual_seed(1))
    queries = torch.tensor([[0, 5, 17, 3], [47 if dim == 3 else 23, 1, 1, 9]])
    with torch.no_grad():
        full = block.attention(x)  # (B, N, Nk)
        rows = nl_attention_rows(block, x, queries)
    expected = full.gather(1, queries.unsqueeze(2).expand(-1, -1, full.shape[2]))
    torch.testing.assert_close(rows, expected)


def _run(block: nn.Module, x: torch.Tensor, **options: int) -> dict[str, dict[str, object]]:
    model = nn.Sequential(nn.Identity(), block).eval()
    with torch.no_grad(), StatisticsCollector(model, **options) as collector:
        model(x)
    return collector.summary()["1"]


def test_query_independent_nl_has_zero_attention_distance() -> None:
    block = _randomised(NonLocalBlock(8, dim=3))
    with torch.no_grad():
        block.conv_theta.weight.zero_()  # theta constant: every query sees the same map
    x = torch.randn(2, 8, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    summary = _run(block, x, pairs_per_clip=64)
    assert summary["clips"] == 2
    assert summary["attention_cosine"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["attention_js"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["attention_js"]["pairs"] == 2 * 64
    assert summary["input"]["mean"] > 0.3  # random inputs differ between positions
    assert summary["output"]["mean"] == pytest.approx(0.0, abs=1e-5)  # same map -> same context added


def test_self_attending_nl_has_large_attention_distance() -> None:
    channels = 8
    block = NonLocalBlock(channels, dim=2, inner_channels=channels, pool=False).eval()
    with torch.no_grad():
        eye = torch.eye(channels).view(channels, channels, 1, 1)
        block.conv_theta.weight.copy_(eye)
        block.conv_phi.weight.copy_(eye)
    x = 10.0 * torch.eye(channels).view(1, channels, 2, 4)  # position i holds the i-th one-hot vector
    summary = _run(block, x, pairs_per_clip=1000)
    assert summary["attention_cosine"]["pairs"] == 28  # all 8 * 7 / 2 pairs
    assert summary["attention_cosine"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert summary["attention_js"]["mean"] == pytest.approx(math.log(2.0), abs=1e-6)
    assert summary["input"]["mean"] == pytest.approx(1.0)


def test_gc_add_output_is_query_independent() -> None:
    block = _randomised(GlobalContextBlock(8, dim=3, ratio=0.5))
    x = torch.randn(1, 8, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    summary = _run(block, x, pairs_per_clip=50)
    assert summary["kind"] == "gc"
    assert summary["grid"] == [2, 4, 4]
    assert summary["output"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["attention_cosine"]["pairs"] == 0  # one map for all queries: nothing to compare


def test_collector_keeps_maps_of_first_clips_and_removes_hooks() -> None:
    model = nn.Sequential(
        nn.Conv3d(3, 8, 1), _randomised(NonLocalBlock(8, dim=3)), _randomised(SimplifiedNonLocalBlock(8, dim=3))
    ).eval()
    x = torch.randn(3, 3, 2, 8, 8)
    with torch.no_grad(), StatisticsCollector(model, pairs_per_clip=16, picture_clips=2) as collector:
        model(x[:1])
        model(x[1:])
    assert collector.clips_seen == 3
    assert [(m.clip, m.kind) for m in collector.maps] == [(0, "nl"), (0, "snl"), (1, "nl"), (1, "snl")]
    nl_map, snl_map = collector.maps[0], collector.maps[1]
    assert nl_map.queries == picture_queries((2, 8, 8)) == [(1, 2, 2), (1, 2, 6), (1, 6, 2), (1, 6, 6)]
    assert nl_map.key_grid == (2, 4, 4) and nl_map.maps.shape == (4, 32)
    torch.testing.assert_close(nl_map.maps.sum(1), torch.ones(4))
    assert snl_map.maps.shape == (1, 128)
    # the kept maps are the blocks' own: NL rows of the query points (t, h, w) -> t * 64 + h * 8 + w, SNL's map
    with torch.no_grad():
        for clip in (0, 1):
            features = model[0](x[clip:clip + 1])
            nl_rows = model[1].attention(features)[0, [82, 86, 114, 118]]
            torch.testing.assert_close(collector.maps[2 * clip].maps, nl_rows)
            torch.testing.assert_close(collector.maps[2 * clip + 1].maps, model[2].attention(model[1](features)))
    assert not model[1]._forward_hooks and not model._forward_pre_hooks
    summary = collector.summary()
    assert list(summary) == ["1", "2"] and summary["1"]["clips"] == 3


def test_model_without_blocks_is_an_error() -> None:
    with pytest.raises(ValueError, match="no NL, SNL or GC block"):
        find_blocks(nn.Sequential(nn.Conv3d(3, 4, 1)))
