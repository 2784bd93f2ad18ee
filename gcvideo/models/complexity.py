"""Parameters and multiply-accumulates (MACs) of a model, counted on the ``meta`` device.

MACs follow the model zoos' "GFLOPs" convention (GCNet, arXiv 1904.11492, tables 5 and 8): multiply-accumulates
of convolutions, linear layers and attention matmuls; normalisation, activations and pooling are not
counted. ``torch.utils.flop_counter`` counts FLOPs = 2 x MACs for those ops; no memory or time is spent
since meta tensors carry shapes only, so full-size models are cheap to count on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop

# The CPU fused attention kernel is not in flop_counter's table in every torch release; its FLOPs are
# those of the other SDPA kernels (q k^T and attn v), so register the same formula for it.
_CPU_SDPA = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
if _CPU_SDPA is not None:
    from torch.utils.flop_counter import flop_registry

    if _CPU_SDPA.default not in flop_registry:

        @register_flop_formula(_CPU_SDPA)
        def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop(query_shape, key_shape, value_shape)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of one forward pass of ``model`` on an input of ``input_shape`` (batch included).

    The model is moved to the meta device for the count if it is not already there.
    """
    meta_model = model if _on_meta(model) else _to_meta(model)
    meta_model.eval()
    x = torch.empty(tuple(input_shape), device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(x)
    return counter.get_total_flops() // 2


def _on_meta(model: nn.Module) -> bool:
    return all(p.device.type == "meta" for p in model.parameters())


def _to_meta(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).to("meta")
