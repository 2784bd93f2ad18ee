"""The optimizer lever (gcvideo.training.optimizer_levers): the fused implementation takes the same steps as
PyTorch's default one (float64, against the for-loop update), keeps every parameter group's settings,
respects an implementation chosen in the optimizer's arguments, and is what the Classifier trains with on
a CPU, where the table says it wins."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gcvideo.training import Classifier
from gcvideo.training.optimizer_levers import (
    POLICY,
    apply_optimizer_impl,
    fused_copy,
    strided_parameters,
    implementation_name,
    implementation_of,
    restore_implementation,
    wants_fused,
)

OPTIMIZERS = [
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.05}),
    (torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}),
]


def _params(seed: int = 0) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(shape, generator=g, dtype=torch.float64)) for shape in ((7, 5), (5,), (3, 2, 2))]


def _run(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], steps: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        optimizer.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_fused_steps_equal_the_for_loop_steps(cls, kwargs):
    plain_params, fused_params = _params(), _params()
    plain = cls(plain_params, foreach=False, **kwargs)
    fused = apply_optimizer_impl(cls(fused_params, **kwargs), "fused")
    assert implementation_name(plain) == "for-loop" and implementation_name(fused) == "fused"
    expected, got = _run(plain, plain_params), _run(fused, fused_params)
    assert not torch.equal(expected[0], _params()[0]), "the steps moved the parameters"
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_fused_copy_keeps_every_group_and_setting():
    a, b = _params(), _params(2)
    sgd = torch.optim.SGD([{"params": a, "weight_decay": 0.0}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9,
                          weight_decay=1e-4, nesterov=True)
    fused = fused_copy(sgd)
    assert type(fused) is torch.optim.SGD and fused.defaults["fused"] is True
    for old, new in zip(sgd.param_groups, fused.param_groups, strict=True):
        assert new["params"] == old["params"] and new["fused"] is True and new["foreach"] is None
        assert {k: v for k, v in new.items() if k not in ("params", "fused", "foreach")} == \
               {k: v for k, v in old.items() if k not in ("params", "fused", "foreach")}
    assert [g["lr"] for g in fused.param_groups] == [0.1, 0.5]
    assert [g["weight_decay"] for g in fused.param_groups] == [0.0, 1e-4]


def test_auto_follows_the_table_and_the_optimizers_own_arguments():
    assert any(r.device == "cpu" and "SGD" in r.optimizers for r in POLICY)
    sgd = torch.optim.SGD(_params(), lr=0.1)
    assert wants_fused(sgd, "cpu") and not wants_fused(sgd, "cuda")  # CUDA: not measured, PyTorch's default
    assert implementation_name(apply_optimizer_impl(sgd, "auto")) == "fused"
    assert apply_optimizer_impl(sgd, "plain") is sgd
    chosen = torch.optim.SGD(_params(), lr=0.1, foreach=False)  # the arguments chose: kept as it is
    assert apply_optimizer_impl(chosen, "auto") is chosen
    rms = torch.optim.RMSprop(_params(), lr=0.1)  # no fused implementation: kept by auto, refused when forced
    assert apply_optimizer_impl(rms, "auto") is rms
    with pytest.raises(ValueError, match="RMSprop has no fused implementation"):
        apply_optimizer_impl(rms, "fused")
    with pytest.raises(ValueError, match="optimizer_impl must be one of"):
        apply_optimizer_impl(sgd, "fast")


def test_an_optimizer_that_has_stepped_is_not_rebuilt():
    params = _params()
    sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    _run(sgd, params, steps=1)
    with pytest.raises(ValueError, match="taken steps already"):
        fused_copy(sgd)


def test_classifier_trains_with_the_implementation_the_table_picks():
    def configured(impl: str) -> torch.optim.Optimizer:
        module = Classifier("slow_r50", num_classes=3, width=4, optimizer_impl=impl,
                            optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
        return module.configure_optimizers()

    assert implementation_name(configured("auto")) == "fused"  # on a CPU
    assert implementation_name(configured("plain")) == "for-loop"
    with pytest.raises(ValueError, match="optimizer_impl must be one of"):
        Classifier("slow_r50", num_classes=3, width=4, optimizer_impl="quick")


def test_a_resumed_state_runs_the_implementation_built_not_the_saved_one():
    saved_params = _params()
    saved = torch.optim.SGD(saved_params, lr=0.1, momentum=0.9)  # a checkpoint written by a for-loop run
    _run(saved, saved_params, steps=2)
    module = Classifier("slow_r50", num_classes=3, width=4, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    optimizer = module.configure_optimizers()
    state = saved.state_dict()
    state["param_groups"] = [{**state["param_groups"][0], "params": list(range(len(list(module.parameters()))))}]
    state["state"] = {}
    optimizer.load_state_dict(state)
    assert implementation_name(optimizer) == "for-loop"  # load_state_dict took the saved group's settings
    module._trainer = SimpleNamespace(optimizers=[optimizer])
    module.on_train_start()
    assert implementation_name(optimizer) == "fused" and optimizer.param_groups[0]["momentum"] == 0.9
    plain = torch.optim.SGD(_params(), lr=0.1)
    settings = implementation_of(plain)
    restore_implementation(plain, settings + settings)  # another group structure: left alone
    assert implementation_of(plain) == settings


def test_channels_last_weights_on_a_cpu_keep_the_default_implementation():
    """PyTorch's fused CPU kernel updates a channels_last parameter wrongly when its gradient's strides differ
    (checked here, so the guard goes when PyTorch fixes it) and slowly when they agree: auto keeps for-loop."""
    cl = torch.channels_last_3d
    weight = torch.randn(4, 6, 3, 2, 2, dtype=torch.float64).contiguous(memory_format=cl)
    grad = torch.randn(4, 6, 3, 2, 2, dtype=torch.float64)  # contiguous: other strides than the weight's
    updated = []
    for kwargs in ({"foreach": False}, {"fused": True}):
        p = nn.Parameter(weight.clone(memory_format=torch.preserve_format))
        p.grad = grad.clone()
        torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1, **kwargs).step()
        updated.append(p.detach())
    assert not torch.allclose(updated[0], updated[1])
    sgd = torch.optim.SGD([nn.Parameter(weight.clone(memory_format=torch.preserve_format)), *_params()], lr=0.1)
    assert strided_parameters(sgd) == 1 and not wants_fused(sgd, "cpu")
    assert apply_optimizer_impl(sgd, "auto") is sgd
    with pytest.raises(ValueError, match="needs contiguous parameters; 1 are not"):
        apply_optimizer_impl(sgd, "fused")
