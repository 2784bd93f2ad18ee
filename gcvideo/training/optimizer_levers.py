"""The optimizer's implementation as a lever of the training step: PyTorch's fused kernels (one pass over
parameters, gradients and state per step) where a measured table says they win, the implementation PyTorch
picks by default elsewhere. The update is the same maths either way (``torch.optim`` documents ``fused``
as an implementation choice), so runs, checkpoints and learning-rate schedules do not depend on it.

Modes (``Classifier(optimizer_impl=...)``, ``model.optimizer_impl`` in the configs):

- ``"auto"``: fused where ``POLICY`` names the optimizer class on the parameters' device, else as built.
  An optimizer built with ``foreach`` or ``fused`` set explicitly is kept as it is, and so is one over
  channels_last weights on a CPU (``strided_parameters``);
- ``"plain"``: as built (PyTorch's default implementation, or the one its arguments ask for);
- ``"fused"``: fused, whatever the table says (a one-line error for a class without a fused implementation,
  or for non-contiguous parameters on a CPU).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

MODES = ("auto", "plain", "fused")


@dataclass(frozen=True)
class OptimizerRule:
    """Use PyTorch's fused ``optimizers`` (class names) on ``device`` (a device type). ``why`` records the
    measurement behind it."""

    device: str
    optimizers: tuple[str, ...]
    why: str


# scripts/bench_optimizers.py on a 2-core CPU, one thread, the 32.5M parameters of Slow-R50 (docs/benchmarks.md).
POLICY: tuple[OptimizerRule, ...] = (
    OptimizerRule("cpu", ("SGD", "Adam", "AdamW"),
                  "2-core CPU, 1 thread, Slow-R50's 32.5M contiguous parameters, two runs: fused 0.23-0.25x the "
                  "time of the default (for-loop) step of SGD (momentum, Nesterov, weight decay), AdamW "
                  "0.27-0.29x, Adam 0.32-0.38x; in a whole training step SGD's 34 ms become 15 ms"),
)
# CUDA: not measured yet (PyTorch's default there is foreach); scripts/gpu_levers.py measures fused against it.


def _has_fused(optimizer: torch.optim.Optimizer) -> bool:
    return "fused" in optimizer.defaults


def chosen_by_user(optimizer: torch.optim.Optimizer) -> bool:
    """True when the optimizer's arguments set ``foreach`` or ``fused`` themselves."""
    return any(optimizer.defaults.get(key) is not None for key in ("foreach", "fused"))


def is_fused(optimizer: torch.optim.Optimizer) -> bool:
    return bool(optimizer.defaults.get("fused"))


def wants_fused(optimizer: torch.optim.Optimizer, device: str) -> bool:
    """Whether ``POLICY`` picks the fused implementation of ``optimizer``'s class on ``device`` (a device type).
    Never for non-contiguous parameters on a CPU (``strided_parameters``)."""
    name = type(optimizer).__name__
    if device == "cpu" and strided_parameters(optimizer):
        return False
    return _has_fused(optimizer) and any(rule.device == device and name in rule.optimizers for rule in POLICY)


def strided_parameters(optimizer: torch.optim.Optimizer) -> int:
    """How many parameters are not contiguous (channels_last convolution weights). PyTorch's fused CPU kernels
    run 1.7x slower on them (SGD over Slow-R50's channels_last_3d weights: 28 ms, 16 ms contiguous) and
    update wrongly when a gradient's strides differ from its parameter's (torch 2.14; autograd keeps them
    equal, a gradient set by hand may not), so the table's CPU rules apply to contiguous parameters only."""
    return sum(not p.is_contiguous() for group in optimizer.param_groups for p in group["params"])


def _device_type(optimizer: torch.optim.Optimizer) -> str | None:
    types = {p.device.type for group in optimizer.param_groups for p in group["params"]}
    return types.pop() if len(types) == 1 else None


def fused_copy(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class over the same parameter groups and settings, fused. Built
    before any step, so there is no state to carry over."""
    if not _has_fused(optimizer):
        raise ValueError(f"{type(optimizer).__name__} has no fused implementation; use optimizer_impl 'auto' "
                         "or 'plain'")
    if optimizer.state:
        raise ValueError("the optimizer has taken steps already: build the fused one before training")
    groups = [{**group, "foreach": None, "fused": True} for group in optimizer.param_groups]
    # The defaults may hold settings the constructor does not take (AdamW's decoupled_weight_decay): the
    # groups carry every setting, the constructor gets those it names.
    accepted = inspect.signature(type(optimizer).__init__).parameters
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return type(optimizer)(groups, **{**defaults, "foreach": None, "fused": True})


def apply_optimizer_impl(optimizer: torch.optim.Optimizer, mode: str = "auto") -> torch.optim.Optimizer:
    """``optimizer`` in the implementation ``mode`` asks for (see the module docstring): itself, or a fused
    copy of it."""
    if mode not in MODES:
        raise ValueError(f"optimizer_impl must be one of {MODES}, got {mode!r}")
    if mode == "plain" or is_fused(optimizer):
        return optimizer
    if mode == "fused":
        if _device_type(optimizer) == "cpu" and strided_parameters(optimizer):
            raise ValueError(f"optimizer_impl 'fused' on a CPU needs contiguous parameters; "
                             f"{strided_parameters(optimizer)} are not (channels_last): use 'auto' or 'plain'")
        return fused_copy(optimizer)
    device = _device_type(optimizer)
    if chosen_by_user(optimizer) or device is None or not wants_fused(optimizer, device):
        return optimizer
    return fused_copy(optimizer)


IMPLEMENTATION_KEYS = ("foreach", "fused")


def implementation_of(optimizer: torch.optim.Optimizer) -> list[dict]:
    """The implementation settings of each parameter group, for ``restore_implementation``."""
    return [{key: group.get(key) for key in IMPLEMENTATION_KEYS} for group in optimizer.param_groups]


def restore_implementation(optimizer: torch.optim.Optimizer, settings: list[dict]) -> None:
    """Put back the implementation settings ``implementation_of`` recorded. ``load_state_dict`` replaces each
    group's settings with the saved ones, so resuming a checkpoint written with another implementation would
    otherwise run that one; the maths are the same, the speed is not."""
    if len(settings) != len(optimizer.param_groups):
        return
    for group, saved in zip(optimizer.param_groups, settings):
        group.update(saved)


def implementation_name(optimizer: torch.optim.Optimizer) -> str:
    """"fused", "foreach" or "for-loop": what ``optimizer.step()`` runs for the first parameter group
    (PyTorch's default: foreach on CUDA, for-loop on a CPU)."""
    group = optimizer.param_groups[0]  # what step() reads
    if group.get("fused"):
        return "fused"
    foreach = group.get("foreach")
    if foreach is None:
        foreach = _device_type(optimizer) == "cuda"
    return "foreach" if foreach else "for-loop"
