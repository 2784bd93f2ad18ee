"""Video-level accuracy over the multi-view test protocol of GCNet's Kinetics experiments (arXiv 1904.11492:
10 clips x 3 crops, as SlowFast arXiv 1812.03982, Sec. 5).

Every test video is seen as ``clips x crops`` views (10 x 3); the softmax scores of its views are
averaged and the average is ranked. A test item is one window (clip) carrying all its crops, so a window
is decoded once (``gcvideo.data.VideoDataset``); the metric keeps, per video, the sum of its view
probabilities and, per item, how often it was seen, so that results do not depend on how the items are
split over batches or processes.

Exactness under DDP. Lightning tests with ``DistributedSampler(shuffle=False)``: dataset index ``i``
(the original copy) lands on rank ``i % world_size``; the copies the sampler pads with land elsewhere.
Each rank therefore keeps only the items with ``index % world_size == rank``; after synchronisation the
"seen" count of every item is checked to be exactly one, so a different sampler cannot silently
double-count. Probabilities are accumulated in fixed point (int64, 2**-40 resolution), whose sums are
exact in any order: 1 process and N processes give bit-identical results.

Memory under DDP. The states are synchronised by an in-place all-reduce (sum, or max for the labels):
each process holds one copy of the states whatever the number of processes (torchmetrics' default
all-gathers every state, ``world_size`` copies per process: about 17 GiB at 64 processes for
Kinetics-400's validation set, against 135 MiB).

Single view. The same pass also keeps the probabilities of one view per video, the window nearest the
centre with its centre crop (``single_view``: window ``(clips - 1) // 2`` and crop ``(crops - 1) // 2``,
the earlier one on a tie: window 4 of 0-9 and crop 1 of 0-2 in the 10 x 3 protocol), so one-view and
30-view accuracies come from the same decode and are never confused.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
from torchmetrics import Metric

# Fixed-point scale of the probability sums: integer sums are associative, float sums are not.
_SCALE = 2.0**40
# How each state is combined over processes (the same as its ``dist_reduce_fx``).
_REDUCE_OPS = {"prob_sums": "sum", "single_view": "sum", "seen": "sum", "invalid": "sum", "labels": "max"}


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class MultiViewAccuracy(Metric):
    """Top-k accuracy of per-video averaged softmax scores over ``views_per_video`` views.

    Args:
        num_videos: videos in the test set (``test_dataset.num_videos``).
        views_per_video: views per video (clips x crops, 30 in the paper's protocol).
        num_classes: number of classes.
        top_k: the k of every accuracy reported (default top-1 and top-5).
        views_per_item: views carried by one item (the crops of one window: ``test_dataset.views_per_item``);
            items per video = ``views_per_video / views_per_item``.

    ``update(probs, labels, item_index, valid)`` takes the softmax probabilities, (B, views_per_item, C)
    (or (B, C) when ``views_per_item`` is 1), the labels (B,), the dataset index of each item (B,)
    (``video_index * items_per_video + item_in_video``) and the item's ``valid`` flag (B,).
    ``compute()`` returns a dict: ``top1``, ``top5`` (fractions of the evaluated videos), the same of the
    single view (``top1_single_view``, ...), ``mean_class_top1`` (top-1 per class, averaged over the classes
    of the evaluated videos), ``videos`` (evaluated), ``missing`` (excluded: an item could not be decoded),
    ``incomplete`` (not all items seen, e.g. with ``limit_test_batches``), ``views`` (views per video),
    ``single_view`` (its window and crop), plus the per-video tensors of ``per_video()``. A video is
    evaluated only when all its items were seen and valid.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, num_videos: int, views_per_video: int, num_classes: int, top_k: tuple[int, ...] = (1, 5),
                 views_per_item: int = 1):
        super().__init__()
        if num_videos < 1 or views_per_video < 1 or num_classes < 1 or views_per_item < 1:
            raise ValueError(
                f"num_videos, views_per_video, num_classes and views_per_item must be >= 1, got "
                f"{num_videos}, {views_per_video}, {num_classes}, {views_per_item}"
            )
        if views_per_video % views_per_item:
            raise ValueError(f"views_per_video ({views_per_video}) must be a multiple of views_per_item "
                             f"({views_per_item})")
        self.num_videos = num_videos
        self.views_per_video = views_per_video
        self.views_per_item = views_per_item
        self.items_per_video = views_per_video // views_per_item
        self.num_classes = num_classes
        self.top_k = tuple(top_k)
        self.single_clip, self.single_crop = (self.items_per_video - 1) // 2, (views_per_item - 1) // 2
        self.add_state("prob_sums", torch.zeros(num_videos, num_classes, dtype=torch.int64), dist_reduce_fx="sum")
        # the single view's probabilities (fixed point): one item per video adds to it, the others add nothing
        self.add_state("single_view", torch.zeros(num_videos, num_classes, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("seen", torch.zeros(num_videos, self.items_per_video, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("invalid", torch.zeros(num_videos, self.items_per_video, dtype=torch.int64),
                       dist_reduce_fx="sum")
        # Labels are stored +1 so that 0 means "not seen"; every item of a video carries the same label.
        self.add_state("labels", torch.zeros(num_videos, dtype=torch.int64), dist_reduce_fx="max")

    def update(self, probs: torch.Tensor, labels: torch.Tensor, item_index: torch.Tensor, valid: torch.Tensor) -> None:
        """Add one batch of items (see the class docstring for the arguments)."""
        if probs.ndim == 2 and self.views_per_item == 1:
            probs = probs.unsqueeze(1)
        if probs.ndim != 3 or probs.shape[1:] != (self.views_per_item, self.num_classes):
            raise ValueError(f"probs must be (B, {self.views_per_item}, {self.num_classes}), got {tuple(probs.shape)}")
        item_index = item_index.long().to(self.seen.device)
        total = self.num_videos * self.items_per_video
        if bool(((item_index < 0) | (item_index >= total)).any()):
            raise ValueError(f"item_index outside [0, {total}): {item_index.tolist()}")
        rank, world = _rank_and_world()
        keep = item_index % world == rank  # drop the sampler's padded duplicates (module docstring)
        item_index = item_index[keep]
        video = item_index // self.items_per_video
        valid = valid.to(self.seen.device).bool()[keep]
        labels = labels.to(self.seen.device).long()[keep]
        fixed = torch.round(probs.detach()[keep].to(self.seen.device, torch.float64) * _SCALE).long()
        fixed = fixed * valid.long().view(-1, 1, 1)  # invalid items are zeros: contribute nothing
        self.prob_sums.index_add_(0, video, fixed.sum(dim=1))
        single = item_index % self.items_per_video == self.single_clip
        self.single_view.index_add_(0, video[single], fixed[single, self.single_crop])
        self.seen.view(-1).index_add_(0, item_index, torch.ones_like(item_index))
        self.invalid.view(-1).index_add_(0, item_index, (~valid).long())
        self.labels.scatter_reduce_(0, video, labels + 1, reduce="amax")

    def _sync_dist(self, dist_sync_fn: Callable | None = None, process_group: Any | None = None) -> None:
        """Combine the states of all processes in place by all-reduce (module docstring: "Memory")."""
        group = process_group or self.process_group
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
        for name, op in _REDUCE_OPS.items():
            dist.all_reduce(getattr(self, name), op=ops[op], group=group)

    def per_video(self) -> dict[str, torch.Tensor]:
        """Per-video tensors after synchronisation: ``probs`` (N, C) mean over views, ``labels`` (N,),
        ``status`` (N,) with 0 = evaluated, 1 = missing (bad video), 2 = incomplete, and
        ``single_view_probs`` (N, C) of the single view (module docstring)."""
        if bool((self.seen > 1).any()):
            dup = int((self.seen > 1).sum())
            raise RuntimeError(
                f"{dup} test items were counted more than once: the multi-view metric expects Lightning's "
                "DistributedSampler(shuffle=False) ordering (dataset index i on rank i % world_size)"
            )
        complete = (self.seen == 1).all(dim=1)
        missing = complete & (self.invalid > 0).any(dim=1)
        status = torch.full((self.num_videos,), 2, dtype=torch.int64, device=self.seen.device)
        status[complete] = 0
        status[missing] = 1
        probs = self.prob_sums.double() / (_SCALE * self.views_per_video)
        return {"probs": probs, "labels": self.labels - 1, "status": status,
                "single_view_probs": self.single_view.double() / _SCALE}

    def compute(self) -> dict[str, Any]:
        """Top-k fractions over the evaluated videos, the counts described in the class docstring, and the
        per-video tensors of ``per_video`` (``probs``, ``labels``, ``status``)."""
        table = self.per_video()
        evaluated = table["status"] == 0
        labels = table["labels"][evaluated]
        out: dict[str, Any] = {}
        hits = {suffix: _hits(sums[evaluated], labels, self.top_k)
                for suffix, sums in (("", self.prob_sums), ("_single_view", self.single_view))}
        for suffix, by_k in hits.items():
            for k in self.top_k:
                out[f"top{k}{suffix}"] = float(by_k[k].double().mean()) if len(labels) else float("nan")
        out["mean_class_top1"] = mean_class_accuracy(hits[""][1], labels)
        out["videos"] = int(evaluated.sum())
        out["missing"] = int((table["status"] == 1).sum())
        out["incomplete"] = int((table["status"] == 2).sum())
        out["views"] = self.views_per_video
        out["single_view"] = {"clip": self.single_clip, "crop": self.single_crop, "clips": self.items_per_video,
                              "crops": self.views_per_item}
        out.update(table)
        return out


def _hits(sums: torch.Tensor, labels: torch.Tensor, top_k: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Per video and k: whether the label is among the k highest sums. Integer sums rank exactly; a stable
    sort breaks ties towards the lower class index."""
    order = torch.sort(sums, dim=1, descending=True, stable=True).indices
    return {k: (order[:, : min(k, sums.shape[1])] == labels.unsqueeze(1)).any(dim=1) for k in (1, *top_k)}


def mean_class_accuracy(hits: torch.Tensor, labels: torch.Tensor) -> float:
    """The accuracy of each class present in ``labels``, averaged over those classes (NaN without videos)."""
    if len(labels) == 0:
        return float("nan")
    classes, index = torch.unique(labels, return_inverse=True)
    correct = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, index, hits.double())
    counts = torch.bincount(index, minlength=len(classes)).double()
    return float((correct / counts).mean())
