"""The query-independence statistics of GCNet (arXiv 1904.11492, sec. 3.1, "Diagnosis").

For a trained non-local block the paper measures the mean cosine distance between the block's inputs
at different positions, between its outputs (what the block adds) at different positions, and between
the attention maps of different query positions (cosine distance and Jensen-Shannon divergence).
Small attention distances with large input distances mean the block learnt a query-independent
global context.

Every statistic is averaged over position pairs sampled per clip, so memory stays bounded at real
sizes (8x28x28 = 6272 positions at res3): nothing here ever holds an N x N matrix.
Jensen-Shannon divergence is in nats (natural logarithm): 0 for identical maps, ln 2 for disjoint ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

JS_MAX = math.log(2.0)  # JS divergence of two distributions with disjoint supports, in nats


def sample_pairs(num_positions: int, num_pairs: int, generator: torch.Generator | None = None) -> Tensor:
    """Pairs of distinct positions, (P, 2) int64.

    All unordered pairs when there are at most ``num_pairs`` of them; otherwise ``num_pairs`` pairs
    drawn uniformly among ordered pairs with i != j (with replacement).
    """
    if num_positions < 2:
        raise ValueError(f"need at least 2 positions to form pairs, got {num_positions}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    if num_positions * (num_positions - 1) // 2 <= num_pairs:
        return torch.triu_indices(num_positions, num_positions, offset=1).t().contiguous()
    first = torch.randint(num_positions, (num_pairs,), generator=generator)
    shift = torch.randint(1, num_positions, (num_pairs,), generator=generator)
    return torch.stack([first, (first + shift) % num_positions], dim=1)


def cosine_distance(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """1 - cos(a, b) along the last dimension, in [0, 2].

    Two zero vectors are identical (distance 0); a zero and a non-zero vector are at distance 1.
    """
    a, b = a.double(), b.double()
    norm_a, norm_b = a.norm(dim=-1), b.norm(dim=-1)
    cos = (a * b).sum(-1) / (norm_a * norm_b).clamp_min(eps)
    both_zero = (norm_a == 0) & (norm_b == 0)
    return torch.where(both_zero, torch.zeros_like(cos), 1.0 - cos)


def _kl(p: Tensor, m: Tensor) -> Tensor:
    # 0 * log(0 / m) = 0; where p > 0, m >= p / 2 > 0
    safe_p = torch.where(p > 0, p, torch.ones_like(p))
    safe_m = torch.where(p > 0, m, torch.ones_like(m))
    return torch.where(p > 0, p * (safe_p.log() - safe_m.log()), torch.zeros_like(p)).sum(-1)


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence in nats between distributions along the last dimension, in [0, ln 2].

    Rows must be non-negative and sum to 1 (attention maps of a softmax).
    """
    p, q = p.double(), q.double()
    if (p < 0).any() or (q < 0).any():
        raise ValueError("js_divergence needs non-negative distributions (softmax attention maps)")
    m = 0.5 * (p + q)
    return (0.5 * (_kl(p, m) + _kl(q, m))).clamp(0.0, JS_MAX)


def position_pair_distances(features: Tensor, pairs: Tensor) -> Tensor:
    """Cosine distance between the features of each position pair.

    Args:
        features: (C, N): one clip, channels by flattened positions.
        pairs: (P, 2) position indices.

    Returns:
        (P,) distances.
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (C, N), got shape {tuple(features.shape)}")
    first = features[:, pairs[:, 0]].t()  # (P, C)
    second = features[:, pairs[:, 1]].t()  # (P, C)
    return cosine_distance(first, second)


@dataclass
class RunningMean:
    """Mean and standard deviation of a stream of values, in O(1) memory."""

    total: float = 0.0
    total_sq: float = 0.0
    count: int = 0

    def add(self, values: Tensor) -> None:
        values = values.detach().double().flatten()
        self.total += float(values.sum())
        self.total_sq += float((values * values).sum())
        self.count += values.numel()

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        return math.sqrt(max(self.total_sq / self.count - mean * mean, 0.0))

    def summary(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "std": self.std, "pairs": self.count}


class BlockStatistics:
    """Accumulates one block's statistics over clips (GCNet sec. 3.1).

    ``input``: cosine distance between the block's inputs at two positions; ``output``: between what
    the block adds there (output - input); ``attention_cosine`` / ``attention_js``: between the attention
    maps of two query positions (NL only: SNL and GC have one map shared by all queries);
    ``relative_output_norm``: ||output - input|| / ||input|| at the sampled positions (is the block used?).
    """

    NAMES = ("relative_output_norm", "input", "output", "attention_cosine", "attention_js")

    def __init__(self) -> None:
        self.values = {name: RunningMean() for name in self.NAMES}
        self.clips = 0

    def add_features(self, inputs: Tensor, outputs: Tensor, pairs: Tensor) -> None:
        """Add one clip's (C, N) inputs and outputs (output - input) at the (P, 2) position pairs."""
        self.values["input"].add(position_pair_distances(inputs, pairs))
        self.values["output"].add(position_pair_distances(outputs, pairs))
        positions = pairs.flatten().unique()
        ratio = outputs[:, positions].double().norm(dim=0) / inputs[:, positions].double().norm(dim=0).clamp_min(1e-12)
        self.values["relative_output_norm"].add(ratio)
        self.clips += 1

    def add_attention(self, first: Tensor, second: Tensor, *, distributions: bool = True) -> None:
        """Add the (P, Nk) attention rows of the first and second query of each pair.

        ``distributions=False`` (dot-product NL, rows are not probabilities) skips the JS divergence.
        """
        self.values["attention_cosine"].add(cosine_distance(first, second))
        if distributions:
            self.values["attention_js"].add(js_divergence(first, second))

    def summary(self) -> dict[str, object]:
        return {"clips": self.clips, **{name: value.summary() for name, value in self.values.items()}}
