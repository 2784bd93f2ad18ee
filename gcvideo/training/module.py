"""The LightningModule: train, validate and test any row of GCNet's tables (arXiv 1904.11492, Sec. 5)
with the SlowFast recipe and test protocol (arXiv 1812.03982, Sec. 4 "Training" and "Inference").

The network is a ``gcvideo.models`` preset given by plain values (so checkpoints load with
``torch.load(weights_only=True)``); the optimizer and LR scheduler come from LightningCLI as callables.
Video items (``video``) and image items (``image``) are both accepted. Validation is clip-level
top-1/top-5; test is video-level over all views when the items carry view indices (10 x 3), and per image
(one view each) when the test set counts its images as ``num_videos``: the module
logs the results and keeps them with the per-video tables in ``test_results``, which
``gcvideo.training.test_results.TestResultsWriter`` writes to ``<default_root_dir>/test/``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torchmetrics.classification import MulticlassAccuracy

from gcvideo.errors import UserError
from gcvideo.models.memory_format import to_channels_last
from gcvideo.training.bar_metrics import LOSS_KEY, cpu_scalar
from gcvideo.training.init_weights import INFLATE_MODES, init_from
from gcvideo.training.multiview_metric import MultiViewAccuracy
from gcvideo.training.optimizer_levers import (
    MODES as OPTIMIZER_IMPLS,
    apply_optimizer_impl,
    implementation_of,
    restore_implementation,
)
from gcvideo.training.test_results import PER_VIDEO_KEYS

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def describe_data(data: L.LightningDataModule) -> dict[str, Any]:
    """Input conventions of a data module (frames, stride, crops, target fps, mean/std), kept with the model."""
    video = hasattr(data, "frames")
    keys = (("frames", "stride", "val_crop", "test_crop", "test_short_side") if video
            else ("val_crop", "val_resize"))
    info: dict[str, Any] = {"input": "video" if video else "image"}
    for key in keys:
        if hasattr(data, key):
            info[key] = int(getattr(data, key))
    info["crop"] = info.pop("val_crop", None)
    if video and hasattr(data, "target_fps"):  # clips sampled by time at this rate, or by frame index (None)
        info["target_fps"] = None if data.target_fps is None else float(data.target_fps)
    for key in ("mean", "std"):
        if hasattr(data, key):
            info[key] = [float(v) for v in getattr(data, key)]
    return info


class Classifier(L.LightningModule):
    """Video or image classifier around ``gcvideo.models.create``.

    Args:
        preset: a ``gcvideo.models.PRESETS`` name (e.g. "slow_r50_gc5").
        num_classes: classifier outputs (LightningCLI links it from ``data.num_classes``).
        width: stem channels (64 = the paper's size).
        dropout: before the classifier (None: the preset's default, 0.5 for video).
        depths: residual blocks per stage.
        blocks: replaces the preset's block placement (list of BlockSpec dicts).
        optimizer: callable(params) -> optimizer (LightningCLI ``class_path``/``init_args``).
        lr_scheduler: callable(optimizer) -> scheduler, stepped per optimizer step when it has
            ``set_steps_per_epoch`` (``gcvideo.training.WarmupCosineLR``), else per epoch.
        init_from: weights to start from (see ``gcvideo.training.init_weights``), loaded in ``setup``.
        inflate: "centre" or "mean", for 2D ResNet-50 weights loaded into a video model.
        channels_last: use channels-last (3d) memory format (faster convolutions on GPU).
        conv_levers: the convolution paths (``gcvideo.models.conv_levers``): "auto" (the measured policy),
            "none" (plain ``nn.Conv3d``) or forced "kind=path" pairs; weights and outputs do not depend on it.
        compile: ``torch.compile`` the network in ``setup`` (in place: checkpoint keys do not change).
        compile_mode: its ``mode``: "default", or "reduce-overhead" (CUDA graphs of forward and backward:
            no launch cost per kernel; static shapes), "max-autotune", ...
        optimizer_impl: the optimizer's implementation (``gcvideo.training.optimizer_levers``): "auto" (fused
            where the measured table says it is faster, unless the optimizer's arguments choose), "plain" (as
            built) or "fused"; the update does not depend on it.
        class_names, data_info: linked from the data module; stored for export and predict.
    """

    def __init__(
        self,
        preset: str = "slow_r50_gc5",
        *,
        num_classes: int | None = None,
        width: int = 64,
        dropout: float | None = None,
        depths: tuple[int, int, int, int] = (3, 4, 6, 3),
        blocks: list[dict[str, Any]] | None = None,
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        inflate: str = "centre",
        channels_last: bool = False,
        conv_levers: str = "auto",
        compile: bool = False,
        compile_mode: str = "default",
        optimizer_impl: str = "auto",
        class_names: list[str] | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        from gcvideo.models import create

        if inflate not in INFLATE_MODES:
            raise ValueError(f"inflate must be one of {INFLATE_MODES}, got {inflate!r}")
        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}")
        if optimizer_impl not in OPTIMIZER_IMPLS:
            raise ValueError(f"optimizer_impl must be one of {OPTIMIZER_IMPLS}, got {optimizer_impl!r}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model = create(preset, num_classes=num_classes, width=width, dropout=dropout, depths=depths,
                            blocks=blocks, conv_levers=conv_levers)
        self.num_classes = self.model.build_args["num_classes"]
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        k = min(5, self.num_classes)
        self.val_top1 = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(self.num_classes, top_k=k, average="micro")
        self.test_top1 = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.test_top5 = MulticlassAccuracy(self.num_classes, top_k=k, average="micro")
        self.multiview: MultiViewAccuracy | None = None
        # the last multi-view test's MultiViewAccuracy.compute(): results and per-video tables (TestResultsWriter)
        self.test_results: dict[str, Any] | None = None
        self._initialised = init_from is None

    # --- set-up -----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if not self._initialised:  # a checkpoint given to fit/test (ckpt_path) is restored after this
            init_from(self.model, self.hparams.init_from, inflate=self.hparams.inflate)
            self._initialised = True
        if self.hparams.channels_last:  # the convolutions only: GC's LayerNorm weight is rank 4
            to_channels_last(self.model)
        if self.hparams.compile and not getattr(self, "_compiled", False):
            # In place (nn.Module.compile), so state-dict keys stay. dynamic=False: a smaller last batch
            # compiles once more instead of turning every graph dynamic.
            mode = {} if self.hparams.compile_mode == "default" else {"mode": self.hparams.compile_mode}
            self.model.compile(dynamic=False, **mode)
            self._compiled = True

    def load_initial_weights(self, *, strict: bool = False) -> None:
        """Apply ``init_from`` now rather than in ``setup`` (once).

        Args:
            strict: every weight must come from the file (evaluation), else UserError.
        """
        if not self._initialised:
            init_from(self.model, self.hparams.init_from, inflate=self.hparams.inflate, strict=strict)
            self._initialised = True

    def skip_initial_weights(self) -> None:
        """The weights come from a checkpoint restored after ``setup``: ``init_from`` is not applied."""
        self._initialised = True

    def configure_optimizers(self) -> Any:
        optimizer = apply_optimizer_impl(self.optimizer_factory(self.parameters()), self.hparams.optimizer_impl)
        self._optimizer_impl_settings = implementation_of(optimizer)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        self._set_run_length(scheduler)
        if not hasattr(scheduler, "set_steps_per_epoch"):
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        epochs = self.trainer.max_epochs
        total = self.trainer.estimated_stepping_batches
        if epochs is not None and epochs > 0 and total != float("inf"):
            scheduler.set_steps_per_epoch(max(1, round(total / epochs)))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def _set_run_length(self, scheduler: Any) -> None:
        """A schedule over the whole run (``WarmupCosineLR``) takes its length from ``trainer.max_epochs``."""
        if not hasattr(scheduler, "set_max_epochs"):
            return
        if self.trainer.fast_dev_run:  # a one-batch smoke test (max_epochs forced to 1): the rates do not matter
            if scheduler.max_epochs is None:
                scheduler.set_max_epochs(scheduler.warmup_epochs + 1)
            return
        scheduler.set_max_epochs(self.trainer.max_epochs)

    def check_schedule(self, max_epochs: int | None) -> None:
        """Raise UserError now if the LR scheduler does not fit a run of ``max_epochs`` epochs.

        The command line calls this before the trainer starts data workers or DDP processes, where
        ``configure_optimizers`` would fail only after they started.
        """
        if self.scheduler_factory is None:
            return
        probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = self.scheduler_factory(probe)
        if hasattr(scheduler, "set_max_epochs"):
            scheduler.set_max_epochs(max_epochs)

    # --- helpers ----------------------------------------------------------------------------------
    def _inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["video"] if "video" in batch else batch["image"]
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_train_start(self) -> None:
        """A resumed optimizer state carries the implementation it was saved with: the one built here runs."""
        settings = getattr(self, "_optimizer_impl_settings", None)
        if settings is not None and len(self.trainer.optimizers) == 1:
            restore_implementation(self.trainer.optimizers[0], settings)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """With CUDA graphs (compile_mode "reduce-overhead"), each training batch is a new graph iteration:
        the memory of the previous step's graph outputs may be reused, whatever torch's heuristic (a new
        iteration at each call with no backward pending) would guess."""
        if self.hparams.compile and "reduce-overhead" in self.hparams.compile_mode:
            torch.compiler.cudagraph_mark_step_begin()

    # --- training and validation ------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        # Training items are valid by contract (an unreadable video is replaced in the dataset), so no
        # masking here: testing `valid` would synchronise with the GPU at every step.
        logits = self.model(self._inputs(batch))
        labels = batch["label"]
        loss = F.cross_entropy(logits, labels)
        # No GPU synchronisation per step (bar_metrics): the loss goes to the loggers, not the bar's
        # per-step metrics (the bars read it themselves), and the lr as a CPU tensor.
        self.log(LOSS_KEY, loss, batch_size=len(labels))
        self.log("train/lr", cpu_scalar(self.optimizers().param_groups[0]["lr"]), prog_bar=True, on_step=True,
                 on_epoch=False)
        return loss

    def _clip_step(self, batch: dict, prefix: str, top1: MulticlassAccuracy, top5: MulticlassAccuracy) -> None:
        valid = batch.get("valid", torch.ones_like(batch["label"], dtype=torch.bool))
        logits = self.model(self._inputs(batch)).float()[valid]
        labels = batch["label"][valid]
        if len(labels) == 0:
            return
        self.log(f"{prefix}/loss", F.cross_entropy(logits, labels), sync_dist=True, batch_size=len(labels))
        top1(logits, labels)
        top5(logits, labels)
        self.log(f"{prefix}/top1", top1, prog_bar=True, batch_size=len(labels))
        self.log(f"{prefix}/top5", top5, batch_size=len(labels))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._clip_step(batch, "val", self.val_top1, self.val_top5)

    # --- multi-view test ------------------------------------------------------------------------
    def _test_dataset(self) -> Any:
        loaders = self.trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        return loader.dataset

    def on_test_epoch_start(self) -> None:
        dataset = self._test_dataset()
        self.multiview = self.test_results = None
        if hasattr(dataset, "views_per_video") and hasattr(dataset, "num_videos"):
            self.multiview = MultiViewAccuracy(dataset.num_videos, dataset.views_per_video, self.num_classes,
                                               views_per_item=int(getattr(dataset, "views_per_item", 1)))
            self.multiview.to(self.device)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if self.multiview is None or ("clip_index" not in batch and "index" not in batch):
            self._clip_step(batch, "test", self.test_top1, self.test_top5)
            return
        if "clip_index" not in batch:  # an image item: one view, its dataset index
            probs = self.model(self._inputs(batch)).float().softmax(dim=1)
            self.multiview.update(probs, batch["label"], batch["index"], batch["valid"])
            return
        video = batch["video"]  # (B, crops, C, T, H, W): one test item is a window with all its crops
        probs = self.model(self._inputs({"video": video.flatten(0, 1)})).float().softmax(dim=1)
        index = batch["video_index"] * self.multiview.items_per_video + batch["clip_index"]
        self.multiview.update(probs.view(*video.shape[:2], -1), batch["label"], index, batch["valid"])

    def on_test_epoch_end(self) -> None:
        if self.multiview is None:
            return
        results = self.multiview.compute()  # synchronised over processes
        for key, value in results.items():
            if key not in PER_VIDEO_KEYS and isinstance(value, (int, float)):  # not the single view's place
                self.log(f"test/{key}", float(value), rank_zero_only=True)
        self.test_results = results
        self.multiview = None

    # --- predict ---------------------------------------------------------------------------------
    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per view: probabilities and pooled backbone features (one forward; head = the classifier).

        A video item of (B, crops, C, T, H, W) (a test window with its crops) gives B x crops views,
        view ``clip_index * crops + k`` for crop k."""
        x = batch["video"] if "video" in batch else batch["image"]
        crops = x.shape[1] if x.ndim == 6 else 1
        inputs = {"video": x.flatten(0, 1)} if x.ndim == 6 else batch
        features = self.model.forward_features(self._inputs(inputs)).float()
        head = self.model.get_submodule(self.model.head_prefix.rstrip("."))
        probs = head(features.to(head.weight.dtype)).float().softmax(dim=1)
        crop = torch.arange(crops, device=x.device)
        first_view = batch["clip_index"] * crops if "clip_index" in batch else torch.zeros_like(batch["label"])
        view = (first_view.unsqueeze(1) + crop).flatten()
        per_view = lambda t: t.repeat_interleave(crops).cpu()  # noqa: E731
        return {"video_index": per_view(batch.get("video_index", batch.get("index"))), "view": view.cpu(),
                "valid": per_view(batch["valid"]), "probs": probs.cpu(), "features": features.cpu()}


def load_classifier(path: str, *, map_location: str | torch.device = "cpu") -> Classifier:
    """A ``Classifier`` with the weights of a gcvideo checkpoint, read with ``weights_only=True``.

    ``init_from`` is not re-applied (it only runs in ``setup``): the checkpoint's weights are used.
    """
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as error:
        raise UserError(f"{path}: not a PyTorch checkpoint ({str(error).splitlines()[0][:120]})") from error
    if not isinstance(ckpt, dict) or "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path}: not a gcvideo training checkpoint (no hyper_parameters / state_dict)")
    hparams = {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")}
    module = Classifier(**hparams)
    module.load_state_dict(ckpt["state_dict"], strict=True)
    return module.eval()
