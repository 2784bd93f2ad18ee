"""The query-independence statistics (GCNet sec. 3.1) against hand-computed answers."""

from __future__ import annotations

import math

import pytest
import torch

from gcvideo.analysis.statistics import (
    JS_MAX,
    BlockStatistics,
    RunningMean,
    cosine_distance,
    js_divergence,
    position_pair_distances,
    sample_pairs,
)


def test_sample_pairs_all_when_few_positions() -> None:
    pairs = sample_pairs(4, 100)
    assert pairs.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_sample_pairs_distinct_seeded_and_bounded() -> None:
    first = sample_pairs(6272, 1024, torch.Generator().manual_seed(0))
    second = sample_pairs(6272, 1024, torch.Generator().manual_seed(0))
    assert first.shape == (1024, 2)
    assert torch.equal(first, second)
    assert (first[:, 0] != first[:, 1]).all()
    assert first.min() >= 0 and first.max() < 6272


def test_sample_pairs_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="at least 2 positions"):
        sample_pairs(1, 10)
    with pytest.raises(ValueError, match="num_pairs"):
        sample_pairs(10, 0)


def test_cosine_distance_known_values() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0], [0.0, 0.0], [1.0, 0.0]])
    expected = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(cosine_distance(a, b), expected)


def test_js_identical_is_zero_and_disjoint_is_ln2() -> None:
    p = torch.softmax(torch.randn(5, 12, generator=torch.Generator().manual_seed(1)), dim=-1)
    torch.testing.assert_close(js_divergence(p, p), torch.zeros(5, dtype=torch.float64))
    left = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    right = torch.tensor([[0.0, 0.0, 0.25, 0.75]])
    torch.testing.assert_close(js_divergence(left, right), torch.tensor([math.log(2.0)], dtype=torch.float64))
    assert JS_MAX == pytest.approx(math.log(2.0))


def test_js_against_formula() -> None:
    p = torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)
    q = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    m = (p + q) / 2
    expected = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    torch.testing.assert_close(js_divergence(p, q), expected)
    with pytest.raises(ValueError, match="non-negative"):
        js_divergence(torch.tensor([-0.5, 1.5]), torch.tensor([0.5, 0.5]))


def test_position_pair_distances() -> None:
    # 3 positions with channels (1,0), (0,1), (2,0)
    features = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    pairs = torch.tensor([[0, 1], [0, 2], [1, 2]])
    torch.testing.assert_close(
        position_pair_distances(features, pairs), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    )


def test_running_mean() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    running = RunningMean()
    running.add(values[:1])
    running.add(values[1:])
    assert running.mean == pytest.approx(2.5)
    assert running.std == pytest.approx(values.double().std(unbiased=False).item())
    assert RunningMean().summary() == {"mean": None, "std": None, "pairs": 0}


def test_block_statistics_summary() -> None:
    stats = BlockStatistics()
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # orthogonal positions: distance 1
    outputs = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # same everywhere: distance 0
    stats.add_features(inputs, outputs, torch.tensor([[0, 1]]))
    maps = torch.tensor([[0.5, 0.5]])
    stats.add_attention(maps, maps)
    summary = stats.summary()
    assert summary["clips"] == 1
    assert summary["input"]["mean"] == pytest.approx(1.0)
    assert summary["output"]["mean"] == pytest.approx(0.0)
    assert summary["relative_output_norm"] == {"mean": pytest.approx(2**0.5), "std": pytest.approx(0.0, abs=1e-12),
                                               "pairs": 2}  # |(1, 1)| / |(1, 0)| at both positions
    assert summary["attention_cosine"]["mean"] == pytest.approx(0.0)
    assert summary["attention_js"]["mean"] == pytest.approx(0.0)
