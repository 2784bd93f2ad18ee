"""Multi-view accuracy (video-level softmax average over 10x3 views) and the warm-up half-cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch

from gcvideo.training.multiview_metric import MultiViewAccuracy
from gcvideo.training.schedule import WarmupCosineLR


def _views(num_videos: int, views: int, classes: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(num_videos * views, classes, generator=g) * 3, dim=1)
    labels = torch.randint(0, classes, (num_videos,), generator=g).repeat_interleave(views)
    return probs, labels


def _reference(probs, labels, num_videos, views, valid):
    """Top-1 / top-5 written out directly: mean probabilities per fully valid video, then rank."""
    mean = probs.double().view(num_videos, views, -1).mean(1)
    ok = valid.view(num_videos, views).all(1)
    lab = labels.view(num_videos, views)[:, 0]
    top5 = mean.topk(5, dim=1).indices
    hits1 = (top5[:, 0] == lab)[ok].double().mean().item()
    hits5 = (top5 == lab[:, None]).any(1)[ok].double().mean().item()
    return hits1, hits5, int(ok.sum())


def test_matches_direct_formula_in_any_batch_order():
    n, v, c = 13, 6, 7
    probs, labels = _views(n, v, c)
    valid = torch.ones(n * v, dtype=torch.bool)
    valid[2 * v + 3] = False  # one bad view excludes video 2
    order = torch.randperm(n * v, generator=torch.Generator().manual_seed(1))
    metric = MultiViewAccuracy(n, v, c)
    for chunk in order.split(5):
        metric.update(probs[chunk], labels[chunk], chunk, valid[chunk])
    out = metric.compute()
    top1, top5, videos = _reference(probs, labels, n, v, valid)
    assert out["top1"] == pytest.approx(top1, abs=0) and out["top5"] == pytest.approx(top5, abs=0)
    assert (out["videos"], out["missing"], out["incomplete"], out["views"]) == (videos, 1, 0, v) == (12, 1, 0, 6)
    assert torch.allclose(out["probs"][0], probs[:v].double().mean(0), atol=1e-11)
    assert out["status"].tolist()[:3] == [0, 0, 1]


def test_views_not_seen_are_incomplete_and_duplicates_are_an_error():
    n, v, c = 3, 4, 5
    probs, labels = _views(n, v, c)
    idx = torch.arange(n * v - 1)  # the last view of video 2 never arrives
    metric = MultiViewAccuracy(n, v, c)
    metric.update(probs[idx], labels[idx], idx, torch.ones(len(idx), dtype=torch.bool))
    out = metric.compute()
    assert (out["videos"], out["incomplete"], out["missing"]) == (2, 1, 0)
    metric.update(probs[:1], labels[:1], torch.tensor([0]), torch.tensor([True]))
    with pytest.raises(RuntimeError, match="more than once"):
        metric.compute()


def test_fixed_point_sums_do_not_depend_on_order():
    n, v, c = 2, 30, 400
    probs, labels = _views(n, v, c, seed=3)
    sums = []
    for seed in range(3):
        order = torch.randperm(n * v, generator=torch.Generator().manual_seed(seed))
        metric = MultiViewAccuracy(n, v, c)
        metric.update(probs[order], labels[order], order, torch.ones(n * v, dtype=torch.bool))
        sums.append(metric.prob_sums.clone())
    assert torch.equal(sums[0], sums[1]) and torch.equal(sums[0], sums[2])


def test_rejects_bad_shapes_and_indices():
    metric = MultiViewAccuracy(2, 3, 4)
    with pytest.raises(ValueError, match="probs must be"):
        metric.update(torch.zeros(2, 5), torch.zeros(2), torch.arange(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="item_index outside"):
        metric.update(torch.zeros(1, 4), torch.zeros(1), torch.tensor([6]), torch.ones(1, dtype=torch.bool))


def test_items_carrying_several_views_match_the_formula():
    """Test items are windows carrying their 3 crops: (B, 3, C) probabilities per item."""
    n, clips, crops, c = 5, 4, 3, 7
    probs, labels = _views(n, clips * crops, c, seed=5)
    valid = torch.ones(n * clips * crops, dtype=torch.bool)
    valid[3 * clips * crops + 4] = False  # a bad window of video 3: the whole item is invalid
    item_probs = probs.view(n * clips, crops, c)
    item_labels, item_valid = labels.view(n * clips, crops)[:, 0], valid.view(n * clips, crops).all(1)
    valid = item_valid.repeat_interleave(crops)
    metric = MultiViewAccuracy(n, clips * crops, c, views_per_item=crops)
    order = torch.randperm(n * clips, generator=torch.Generator().manual_seed(2))
    for chunk in order.split(3):
        metric.update(item_probs[chunk], item_labels[chunk], chunk, item_valid[chunk])
    out = metric.compute()
    top1, top5, videos = _reference(probs, labels, n, clips * crops, valid)
    assert (out["top1"], out["top5"], out["videos"], out["missing"]) == (top1, top5, videos, 1)
    assert torch.allclose(out["probs"][1], probs[clips * crops:2 * clips * crops].double().mean(0), atol=1e-11)
    with pytest.raises(ValueError, match=r"probs must be \(B, 3, 7\)"):
        metric.update(probs[:3], labels[:3], torch.arange(3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of views_per_item"):
        MultiViewAccuracy(n, 10, c, views_per_item=3)


def test_single_view_is_the_centre_window_and_crop_of_the_same_pass():
    """10 windows x 3 crops: the single view is window 4 (of 0-9) with crop 1 (of 0-2), whatever the batch order;
    the mean per-class top-1 averages the classes of the evaluated videos."""
    n, clips, crops, c = 9, 10, 3, 4
    probs, labels = _views(n, clips * crops, c, seed=7)
    item_probs, item_labels = probs.view(n * clips, crops, c), labels.view(n * clips, crops)[:, 0]
    valid = torch.ones(n * clips, dtype=torch.bool)
    valid[5 * clips + 8] = False  # video 5 cannot be read: neither protocol counts it
    metric = MultiViewAccuracy(n, clips * crops, c, views_per_item=crops)
    order = torch.randperm(n * clips, generator=torch.Generator().manual_seed(4))
    for chunk in order.split(7):
        metric.update(item_probs[chunk], item_labels[chunk], chunk, valid[chunk])
    out = metric.compute()
    one = probs.view(n, clips, crops, c)[:, 4, 1].double()  # the centre-nearest window, the centre crop
    lab = labels.view(n, clips * crops)[:, 0]
    ok = torch.arange(n) != 5
    assert out["single_view"] == {"clip": 4, "crop": 1, "clips": 10, "crops": 3}
    assert out["top1_single_view"] == (one.argmax(1) == lab)[ok].double().mean().item()
    assert out["top5_single_view"] == 1.0  # 4 classes: every label is in the top 5
    assert torch.allclose(out["single_view_probs"][ok], one[ok], atol=1e-11)
    hits = (probs.double().view(n, clips * crops, c).mean(1).argmax(1) == lab)[ok]
    per_class = [hits[lab[ok] == k].double().mean().item() for k in lab[ok].unique().tolist()]
    assert out["mean_class_top1"] == pytest.approx(sum(per_class) / len(per_class), abs=1e-12)
    assert out["top1"] == hits.double().mean().item()


def _ddp_metric_worker(rank: int, world: int, store: str, out: str, duplicate: bool) -> None:
    """One process of ``test_ddp_sync_is_an_all_reduce``: Lightning's test sampling, then compute()."""
    import json

    import torch.distributed as dist

    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP threads (they hang)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    sent = []
    real_all_reduce = dist.all_reduce

    def counted(tensor, *args, **kwargs):
        sent.append(tensor.numel() * tensor.element_size())
        return real_all_reduce(tensor, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("the metric gathered states from every process")

    dist.all_reduce = counted
    dist.all_gather = dist.all_gather_into_tensor = dist.all_gather_object = dist.gather = refuse
    n, clips, crops, c = 7, 3, 2, 11  # 21 items: padded to a multiple of 2 and 3 by repeating the first
    probs, labels = _views(n, clips * crops, c, seed=9)
    item_probs, item_labels = probs.view(n * clips, crops, c), labels.view(n * clips, crops)[:, 0]
    items = list(range(n * clips))
    items += items[: -len(items) % world]  # DistributedSampler(shuffle=False): pad, then every world-th
    mine = torch.tensor(items[rank::world] + ([rank] if duplicate and rank == 0 else []))
    metric = MultiViewAccuracy(n, clips * crops, c, views_per_item=crops)
    for chunk in mine.split(4):
        metric.update(item_probs[chunk], item_labels[chunk], chunk, torch.ones(len(chunk), dtype=torch.bool))
    try:
        result = {k: v for k, v in metric.compute().items() if not isinstance(v, torch.Tensor)}
    except RuntimeError as e:
        result = {"error": str(e)}
    state_bytes = sum(getattr(metric, k).numel() * getattr(metric, k).element_size()
                      for k in ("prob_sums", "single_view", "seen", "invalid", "labels"))
    with open(f"{out}.{rank}", "w") as f:
        json.dump({"result": result, "sent": sum(sent), "state_bytes": state_bytes}, f)
    dist.destroy_process_group()


def _run_ddp_metric(tmp_path, world: int, duplicate: bool = False) -> list[dict]:
    import json

    import torch.multiprocessing as mp

    out = tmp_path / f"w{world}{duplicate}"
    mp.start_processes(_ddp_metric_worker, args=(world, str(tmp_path / f"store{world}{duplicate}"), str(out),
                                                 duplicate), nprocs=world, start_method="fork")
    return [json.loads(open(f"{out}.{rank}").read()) for rank in range(world)]


def test_ddp_sync_is_an_all_reduce_of_constant_size(tmp_path):
    """CPU DDP (gloo) with 2 and 3 processes: the same result as one process, no all-gather, and the bytes
    each process passes to the collectives are exactly its states, whatever the number of processes."""
    n, clips, crops, c = 7, 3, 2, 11
    probs, labels = _views(n, clips * crops, c, seed=9)
    single = MultiViewAccuracy(n, clips * crops, c, views_per_item=crops)
    single.update(probs.view(n * clips, crops, c), labels.view(n * clips, crops)[:, 0], torch.arange(n * clips),
                  torch.ones(n * clips, dtype=torch.bool))
    expected = {k: v for k, v in single.compute().items() if not isinstance(v, torch.Tensor)}
    for world in (2, 3):
        for part in _run_ddp_metric(tmp_path, world):
            assert part["result"] == expected
            # the 30-view and the single view's sums (n x c each), seen and invalid (n x clips each), labels (n)
            assert part["sent"] == part["state_bytes"] == (2 * n * c + 2 * n * clips + n) * 8
    # a view counted twice is still caught after the all-reduce, on every process
    assert all("counted more than once" in p["result"]["error"] for p in _run_ddp_metric(tmp_path, 2, True))


def test_warmup_cosine_is_the_pyslowfast_recipe():
    """lr 0.1, 34 warm-up epochs from 0.01, half-cosine over 196 epochs (SlowFast arXiv 1812.03982 recipe, PySlowFast lr_policy)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupCosineLR(opt, max_epochs=196, warmup_epochs=34, warmup_start_factor=0.1)
    steps = 10
    sched.set_steps_per_epoch(steps)
    cosine = lambda e: 0.05 * (1 + math.cos(math.pi * e / 196))  # noqa: E731
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(196 * steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[17 * steps] == pytest.approx(0.01 + (cosine(34) - 0.01) / 2)  # half-way up the warm-up
    assert lrs[34 * steps] == pytest.approx(cosine(34))
    assert lrs[100 * steps + 5] == pytest.approx(cosine(100.5))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert max(lrs) == pytest.approx(cosine(34))  # PySlowFast's warm-up ends on the cosine, below 0.1
    with pytest.raises(ValueError, match="warmup_epochs"):
        WarmupCosineLR(opt, max_epochs=5, warmup_epochs=5)
