"""The blocks in every memory layout and dtype: channels_last equals contiguous (forward and backward),
GC and SNL make no copy of the feature map (checked with the torch profiler), CPU autocast in bf16,
every NL attention path equals the written-out formula, the path policy, and no graph breaks under
torch.compile (GCNet, arXiv 1904.11492; non-local, arXiv 1711.07971)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gcvideo.layers import attention_paths, create_block
from gcvideo.layers.attention_paths import POLICY, attend, choose_path
from gcvideo.layers.attention_pooling import attention_pool

C = 16
BLOCKS = [
    ("gc", {"ratio": 1 / 4}),
    ("gc", {"ratio": 1 / 4, "fusion": ("mul", "add")}),
    ("gc", {"ratio": 1 / 4, "fusion": "mul", "mul_gate": "2sigmoid"}),
    ("gc", {"ratio": 1 / 4, "pooling": "avg", "fusion": ("mul", "add")}),
    ("snl", {}),
    ("nl", {}),
    ("nl", {"softmax_path": "math"}),
    ("nl", {"instantiation": "dot_product"}),
]
IDS = [f"{k}-{'-'.join(str(v) for v in o.values()) or 'default'}" for k, o in BLOCKS]
FORMATS = {2: torch.channels_last, 3: torch.channels_last_3d}


def _randomised(kind: str, opts: dict, dim: int, dtype=torch.float32) -> nn.Module:
    block = create_block(kind, C, dim=dim, options=opts).to(dtype)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
    return block.train()


def _input(dim: int, dtype=torch.float32) -> torch.Tensor:
    spatial = (6, 10) if dim == 2 else (3, 6, 10)
    return torch.randn(2, C, *spatial, dtype=dtype, generator=torch.Generator().manual_seed(1))


def _forward_backward(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_()
    block.zero_grad(set_to_none=True)
    out = block(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)  # a non-uniform loss
    (out * weights).sum().backward()
    return (out, x.grad, *(p.grad for p in block.parameters()))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind,opts", BLOCKS, ids=IDS)
def test_channels_last_equals_contiguous_forward_and_backward(kind, opts, dim):
    block = _randomised(kind, opts, dim, torch.float64)
    x = _input(dim, torch.float64)
    reference = _forward_backward(block, x)
    fmt = FORMATS[dim]
    results = _forward_backward(block, x.contiguous(memory_format=fmt))
    assert results[0].is_contiguous(memory_format=fmt), "the output keeps the input's layout"
    assert results[1].is_contiguous(memory_format=fmt), "the input gradient keeps the input's layout"
    for got, want in zip(results, reference):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_attention_pool_gradients_equal_autograd_of_the_formula(layout, dim):
    """The hand-written backward of GC/SNL's pooling against autograd of sum_j softmax_j(w . x_j + b) x_j."""
    conv = nn.Conv3d(C, 1, 1) if dim == 3 else nn.Conv2d(C, 1, 1)
    conv = conv.double()
    x = _input(dim, torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=FORMATS[dim])
    x.requires_grad_()
    cotangent = torch.randn(2, C, dtype=torch.float64)
    context = attention_pool(x, conv)
    grads = torch.autograd.grad((context * cotangent).sum(), (x, conv.weight, conv.bias))
    logits = torch.einsum("c,bcn->bn", conv.weight.flatten(), x.flatten(2)) + conv.bias
    expected = torch.einsum("bn,bcn->bc", logits.softmax(1), x.flatten(2))
    expected_grads = torch.autograd.grad((expected * cotangent).sum(), (x, conv.weight, conv.bias))
    torch.testing.assert_close(context, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert grads[0].stride() == x.stride(), "the input gradient is written in the input's layout"


def _feature_map_copies(block: nn.Module, x: torch.Tensor, autocast: bool = False) -> list[str]:
    """Ops of one forward+backward that copy (copy_, clone, dtype casts) a tensor as large as ``x``."""
    x = x.detach().requires_grad_()
    grad = torch.randn_like(x)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            block(x).backward(grad)  # backward under autocast too: the harder case
    copies = {"aten::copy_", "aten::clone", "aten::_to_copy", "aten::contiguous"}
    found = []
    for event in prof.events():
        shapes = [s for s in (event.input_shapes or []) if s]
        if event.name in copies and any(torch.Size(s).numel() == x.numel() for s in shapes):
            found.append(f"{event.name}{shapes}")
    return found


POOLING_BLOCKS = [(b, i) for b, i in zip(BLOCKS, IDS) if b[0] != "nl"]


@pytest.mark.parametrize("kind,opts", [b for b, _ in POOLING_BLOCKS], ids=[i for _, i in POOLING_BLOCKS])
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_gc_and_snl_make_no_copy_of_the_feature_map(kind, opts, layout):
    block = _randomised(kind, opts, 3)
    x = _input(3)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    assert _feature_map_copies(block, x) == []
    # Under bf16 autocast with bf16 activations (as in training), and with float32 ones.
    assert _feature_map_copies(block, x.bfloat16(), autocast=True) == []
    assert _feature_map_copies(block, x, autocast=True) == []


def test_the_copy_detector_sees_a_layout_copy():
    class Copying(nn.Module):
        def forward(self, x):
            return x + x.flatten(1).sum()  # flatten(1) of a channels_last tensor copies it

    assert _feature_map_copies(Copying(), _input(3).contiguous(memory_format=torch.channels_last_3d))


@pytest.mark.parametrize("kind,opts", BLOCKS, ids=IDS)
def test_cpu_bf16_autocast_runs_and_stays_close_to_float32(kind, opts):
    block = _randomised(kind, opts, 3)
    x = _input(3).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        reference = block(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.1)
    x = x.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        block(x).float().square().mean().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


def _attention_formula(q, k, v, scale):
    return torch.softmax(torch.einsum("bid,bjd->bij", q, k) * scale, dim=2) @ v


@pytest.mark.parametrize("path", ["sdpa", "math", "chunked"])
@pytest.mark.parametrize("layout", ["positions_last", "channels_first"])
def test_every_cpu_attention_path_equals_the_formula(path, layout, monkeypatch):
    monkeypatch.setattr(attention_paths, "CHUNK_ELEMENTS", 2 * 12 * 7)  # 7 queries per chunk: 3 chunks
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, n, 6, dtype=torch.float64, generator=g) for n in (17, 12, 12))
    if layout == "channels_first":  # (B, N, d) views of (B, d, N) tensors, as from contiguous maps
        q, k, v = (t.mT.contiguous().mT for t in (q, k, v))
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = attend(q, k, v, 0.4, path)
    expected = _attention_formula(q, k, v, 0.4)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    if path != "sdpa":
        assert out.stride(-1) == q.stride(-1), "the output keeps the queries' layout"
    grads = torch.autograd.grad(out.sin().sum(), (q, k, v))
    expected_grads = torch.autograd.grad(expected.sin().sum(), (q, k, v))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_policy_table_picks_measured_paths():
    assert choose_path("cuda", torch.bfloat16, 256) == "sdpa"  # flash applies (res3)
    assert choose_path("cuda", torch.bfloat16, 512) == "math"  # res4: flash does not apply
    assert choose_path("cuda", torch.float32, 256) == "math"
    assert choose_path("cpu", torch.float32, 256) == "sdpa"
    assert choose_path("cpu", torch.float32, 512) == "math"
    assert choose_path("meta", torch.float32, 512) == "sdpa"  # complexity counting: the default
    assert all(rule.path in attention_paths.PATHS and rule.why for rule in POLICY)
    assert POLICY[-1].device == "*" and not POLICY[-1].dtypes and POLICY[-1].max_head_dim is None  # a default
    with pytest.raises(ValueError, match="valid paths"):
        attend(*(torch.zeros(1, 2, 3) for _ in range(3)), 1.0, "flash")


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("kind,opts", BLOCKS, ids=IDS)
def test_no_graph_breaks_under_torch_compile(kind, opts, layout):
    import torch._dynamo

    block = _randomised(kind, opts, 3)
    x = _input(3).contiguous(memory_format=FORMATS[3] if layout == "channels_last" else torch.contiguous_format)
    x.requires_grad_()  # the custom backward is traced too
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(block)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize("kind,opts", [BLOCKS[1], BLOCKS[4]], ids=[IDS[1], IDS[4]])
def test_compiled_block_forward_and_backward_equal_eager(kind, opts):
    block = _randomised(kind, opts, 3)
    x = _input(3).contiguous(memory_format=torch.channels_last_3d)
    eager = _forward_backward(block, x)
    torch._dynamo.reset()
    compiled = torch.compile(block, backend="aot_eager", fullgraph=True)
    for got, want in zip(_forward_backward(compiled, x), eager):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=5e-5)  # conv_mask.bias: zero up to rounding


@pytest.mark.parametrize("kind,opts", [BLOCKS[1], BLOCKS[4]], ids=[IDS[1], IDS[4]])
def test_compiled_block_trains_under_autocast(kind, opts):
    """bf16 autocast, as ``--trainer.precision bf16-mixed``: one graph, forward and backward as eager.

    Dynamo traces the GC/SNL pooling's backward inside the forward's autocast-off region; a backward that
    switched autocast off there too would fail dynamo's assertion ("Global autocast(cpu)_enabled state
    changed while dynamo tracing"), so ``autocast_off`` acts only where autocast is on."""
    block = _randomised(kind, opts, 3)
    x = _input(3, torch.bfloat16).contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = _forward_backward(block, x)
        torch._dynamo.reset()
        compiled = _forward_backward(torch.compile(block, backend="aot_eager", fullgraph=True), x)
    for got, want in zip(compiled, eager):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # aot_eager runs the eager ops
