"""The Kinetics and image-folder data modules: options, loaders, test views over processes, uint8 batches, the
once-per-run bad-video log."""

import logging

import numpy as np
import pytest
import torch
from data_fixtures import kinetics_tree, tiny_dataset  # noqa: F401
from torch.utils.data import DataLoader, DistributedSampler

from gcvideo.data import KineticsDataModule, VideoDataset
from gcvideo.data.clips.bad_videos import FAILURE_KEY
from gcvideo.data.clips.transforms import long_side_crop, normalize, normalize_batch, resize_short_side
from gcvideo.errors import UserError

SMALL = dict(frames=4, stride=2, train_short_side=(24, 28), train_crop=20, val_short_side=24, val_crop=20,
             test_short_side=24, test_crop=24, test_clips=2, test_crops=3, num_workers=0, batch_size=4)


@pytest.fixture(scope="module")
def dm(tiny_dataset):  # noqa: F811
    module = KineticsDataModule(str(tiny_dataset), **SMALL)
    module.setup()
    return module


def test_num_classes_without_setup(tiny_dataset):  # noqa: F811
    module = KineticsDataModule(str(tiny_dataset))
    assert module.num_classes == 3 and module.class_names[0] == "moving left"


def test_a_root_without_class_list_says_so(tiny_dataset):  # noqa: F811
    # class folders named "moving left", ... and no classnames.txt: not the Kinetics-400 list
    with pytest.raises(UserError, match=r"no class list: .*videos/classnames.txt is missing .*'moving left'.*"
                                        r"write the class names there") as e:
        KineticsDataModule(str(tiny_dataset / "videos"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("stage,shape", [("train", (3, 4, 20, 20)), ("val", (3, 4, 20, 20)),
                                         ("test", (3, 3, 4, 24, 24))])  # test: the 3 crops of a window
def test_item_shapes_and_dtypes(dm, stage, shape):
    batch = dm.on_after_batch_transfer(next(iter(getattr(dm, f"{stage}_dataloader")())), 0)  # uint8 train -> float
    n = min(4, len(getattr(dm, f"{stage}_dataset")))
    assert batch["video"].shape == (n, *shape) and batch["video"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["video_index"].dtype == torch.int64
    assert batch["valid"].dtype == torch.bool and bool(batch["valid"].all())
    assert (stage == "test") == ("clip_index" in batch)
    assert batch[FAILURE_KEY] == [""] * n  # no video failed
    assert -3 < float(batch["video"].mean()) < 3  # normalised


def test_test_items_are_windows_with_all_their_crops(dm):
    ds = dm.test_dataset
    assert (ds.views_per_video, ds.items_per_video, ds.views_per_item) == (6, 2, 3)
    assert len(ds) == ds.num_videos * 2 == 12 and len(ds.video_paths) == 6
    for index in range(len(ds)):
        item = ds[index]
        v, c = int(item["video_index"]), int(item["clip_index"])
        assert index == v * 2 + c
    # crop k of an item is crop k of the window, resized once (the decoded window, cropped three ways)
    from gcvideo.data.clips.transforms import frames_to_video
    from gcvideo.data.decoding.decode import decode_frames

    item = ds[3]  # video 1, clip 1
    window = resize_short_side(frames_to_video(decode_frames(ds.video_paths[1], ds._indices(1))), 24)
    for k in range(3):
        assert torch.equal(item["video"][k], normalize(long_side_crop(window, 24, k, 3), ds.mean, ds.std))


def test_distributed_sampler_covers_every_view(dm):
    ds = dm.test_dataset
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        for batch in DataLoader(ds, batch_size=5, sampler=sampler):
            views = batch["clip_index"][:, None] * 3 + torch.arange(3)  # (B, crops)
            seen += (batch["video_index"][:, None] * 6 + views).flatten().tolist()
    assert set(seen) == set(range(ds.num_videos * ds.views_per_video))


def test_wrong_options(tiny_dataset):  # noqa: F811
    with pytest.raises(ValueError, match="train, val, test"):
        VideoDataset([], "eval")
    with pytest.raises(ValueError, match="valid: auto, decord, torchcodec, pyav, pyav_sequential$"):
        KineticsDataModule(str(tiny_dataset), decoder="opencv")


def test_image_train_flip_can_be_turned_off(tmp_path):
    from PIL import Image

    from gcvideo.data import ImageFolderDataModule

    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        ramp = np.linspace(0, 255, 8).astype(np.uint8)  # brighter to the right: a flip reverses it
        pixels = np.broadcast_to(ramp[None, :, None], (8, 8, 3)).copy()
        Image.fromarray(pixels).save(tmp_path / split / "a" / "0.png")
    data = ImageFolderDataModule(str(tmp_path), train_crop=8, val_resize=8, val_crop=8, num_workers=0, train_flip=False)
    data.setup("fit")
    torch.manual_seed(0)
    images = [data.train_dataset[0]["image"] for _ in range(10)]
    assert all(bool(img[:, :, 0].mean() < img[:, :, -1].mean()) for img in images)


def test_missing_files_are_counted_once_by_the_data_module(tmp_path, caplog):
    from gcvideo.data import KineticsDataModule

    rows = [("abseiling", "a" * 11, 1, 11, "val"), ("zumba", "b" * 11, 2, 12, "val"), ("zumba", "c" * 11, 3, 13, "val")]
    kinetics_tree(tmp_path, rows, ["abseiling/aaaaaaaaaaa_000001_000011.mp4"])
    with caplog.at_level("WARNING"):
        table = KineticsDataModule(str(tmp_path)).records("val")
    assert len(table) == 3
    (message,) = [r.getMessage() for r in caplog.records]
    assert "2 of 3 rows have no video file" in message and "bbbbbbbbbbb_000002_000012" in message


def test_bad_videos_are_logged_once_per_run_with_a_total(tiny_dataset, tmp_path, caplog):  # noqa: F811
    # 2 workers both meet a missing test video (4 windows): the data module logs it once, then the total
    videos = sorted((tiny_dataset / "videos" / "test").rglob("*.mp4"))
    missing = tmp_path / "gone.mp4"
    (tmp_path / "test.txt").write_text(f"{videos[0]} 0\n{missing} 1\n{videos[1]} 2\n")
    dm = KineticsDataModule(str(tiny_dataset), **{**SMALL, "test_clips": 4, "test_crops": 1, "num_workers": 2,
                                                  "batch_size": 1}, test_list=str(tmp_path / "test.txt"))
    dm.setup("test")
    reports = 0
    with caplog.at_level("WARNING"):
        for batch in dm.test_dataloader():
            reports += sum(bool(text) for text in batch[FAILURE_KEY])
            batch = dm.on_before_batch_transfer(batch, 0)
            assert FAILURE_KEY not in batch
        dm.teardown("test")
    assert reports == 4  # each window of the missing video carries its failure
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum(str(missing) in m for m in messages) == 1
    assert messages[-1].startswith("1 unreadable video in this run so far (end of test")
    assert len(messages) == 2


def _fake_trainer(stage: str, epoch: int = 0):
    from types import SimpleNamespace

    from lightning.pytorch.trainer.states import RunningStage

    return SimpleNamespace(state=SimpleNamespace(stage=RunningStage(stage)), training=stage == "train",
                           current_epoch=epoch)


def _failure_batch(*paths):
    from gcvideo.data.clips.bad_videos import encode_failures

    failures = [encode_failures([(p, "missing")]) if p else "" for p in paths]
    return {"label": torch.zeros(len(paths)), FAILURE_KEY: failures}


def test_a_missing_file_in_predict_says_what_happens_to_it(tiny_dataset, caplog):  # noqa: F811
    # predict reads files given by the user, not "this test dataset": the message says so
    dm = KineticsDataModule(str(tiny_dataset), **SMALL)
    dm.trainer = _fake_trainer("predict")
    with caplog.at_level("WARNING"):
        dm.on_before_batch_transfer(_failure_batch("/videos/gone.mp4", ""), 0)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == "unreadable video /videos/gone.mp4, written with valid=false: missing"


def test_training_reports_the_total_at_each_new_epoch(tiny_dataset, caplog):  # noqa: F811
    dm = KineticsDataModule(str(tiny_dataset), **SMALL)
    with caplog.at_level("WARNING"):
        for epoch, paths in enumerate((["/a.mp4", "", "/a.mp4"], ["/b.mp4"], [""], ["/a.mp4"])):
            dm.trainer = _fake_trainer("train", epoch)
            dm.on_before_batch_transfer(_failure_batch(*paths), 0)
        dm.teardown("fit")
    assert [r.getMessage().split(" in this run")[0].split(",")[0] for r in caplog.records] == [
        "unreadable video /a.mp4", "1 unreadable video", "unreadable video /b.mp4", "2 unreadable videos",
        "2 unreadable videos"]
    # after epoch 2 (nothing new) no total; at the end of the stage always
    assert "(after epoch 0;" in caplog.records[1].getMessage() and "(end of fit;" in caplog.records[-1].getMessage()


def test_kinetics_configs_test_on_the_validation_split_by_default():
    """The paper's protocol (GCNet and PySlowFast report Kinetics-400 val); the test split stays selectable."""
    import inspect
    from pathlib import Path

    import yaml

    configs = sorted((Path(__file__).parents[1] / "configs" / "kinetics400").glob("*.yaml"))
    assert len(configs) == 6
    for config in configs:
        data = yaml.safe_load(config.read_text())["data"]["init_args"]
        assert data["test_split"] == "val" and "--data.init_args.test_split test" in config.read_text(), config
    assert inspect.signature(KineticsDataModule).parameters["test_split"].default == "test"


def test_datamodule_batches_count_clips_and_normalise_on_transfer(tiny_dataset):  # noqa: F811
    small = dict(frames=4, stride=2, train_short_side=(24, 28), train_crop=20, num_workers=0, batch_size=4)
    with pytest.raises(UserError, match="multiple of data.clips_per_video"):
        KineticsDataModule(str(tiny_dataset), clips_per_video=3, **small)
    dm = KineticsDataModule(str(tiny_dataset), clips_per_video=2, decoder="auto", **small)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 20, 20) and batch["video"].dtype == torch.uint8
    assert torch.equal(batch["label"][0::2], batch["label"][1::2])  # two clips of each video, side by side
    moved = dm.on_after_batch_transfer(batch, 0)
    torch.testing.assert_close(moved["video"], normalize_batch(batch["video"]))
    val = next(iter(dm.val_dataloader()))
    assert val["video"].dtype == torch.float32 and dm.on_after_batch_transfer(val, 0)["video"] is val["video"]
