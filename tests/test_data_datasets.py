import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from data_fixtures import bad_files, ramp_video, tiny_dataset  # noqa: F401
from gcvideo.data import KineticsDataModule, VideoDataset, VideoFilesDataset, VideoRecord
from gcvideo.data.bad_videos import FAILURE_KEY, decode_failures
from gcvideo.data.transforms import long_side_crop, normalize, resize_short_side
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
    # class folders named "moving left", ... and no classnames.txt: not the Kinetics-400 list (issue 11)
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
    from gcvideo.data.decoding import decode_frames
    from gcvideo.data.transforms import frames_to_video

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


def test_windows_and_crops(tmp_path):
    from gcvideo.data.synth import write_mp4

    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12, 24, 48), 8)
    ds = VideoFilesDataset([path], frames=3, stride=2, short_side=24, crop=24, clips=3, crops=3, mean=(0, 0, 0),
                           std=(1 / 255,) * 3)
    first = [ds[i]["video"][0, 0, :, 0, 0].round().tolist() for i in (0, 1, 2)]  # crop 0 of clips 0, 1, 2
    np.testing.assert_allclose(first, [[10, 50, 90], [90, 130, 170], [150, 190, 230]], atol=4)
    assert int(ds[0]["label"]) == -1
    x = torch.arange(2 * 10).view(1, 1, 2, 10)
    assert [long_side_crop(x, 2, k, 3)[0, 0, 0].tolist() for k in range(3)] == [[0, 1], [4, 5], [8, 9]]


def test_short_video_repeats_last_frame(bad_files):  # noqa: F811
    ds = VideoDataset([VideoRecord(str(bad_files["short"]), 0)], "val", frames=4, stride=2, short_side=24, crop=20)
    item = ds[0]
    assert bool(item["valid"]) and item["video"].shape == (3, 4, 20, 20)
    assert torch.equal(item["video"][:, 1], item["video"][:, 3])


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated"])
@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_bad_files(bad_files, kind, mode, caplog):  # noqa: F811
    records = [VideoRecord(str(bad_files[kind]), 1), VideoRecord(str(bad_files["good"]), 0)]
    ds = VideoDataset(records, mode, frames=4, stride=2, short_side=24, crop=20, clips=2, crops=1)
    with caplog.at_level("WARNING"):
        items = [ds[0], ds[0]]
    assert all(it["video"].shape == ((1, 3, 4, 20, 20) if mode == "test" else (3, 4, 20, 20)) for it in items)
    if mode == "train":  # replaced by the good video
        assert all(bool(it["valid"]) and int(it["video_index"]) == 1 for it in items)
    else:
        assert not any(bool(it["valid"]) for it in items) and float(items[0]["video"].abs().sum()) == 0
    assert ds.bad_videos == {str(bad_files[kind]): ds.bad_videos[str(bad_files[kind])]}
    # each item says which video failed for it (the data module logs it once); the dataset logs nothing
    reason = "missing" if kind == "missing" else "empty" if kind == "empty" else "undecodable"
    for it in items:
        (path, why), = decode_failures(it[FAILURE_KEY])
        assert path == str(bad_files[kind]) and why.startswith(reason)
    assert not caplog.records


def test_wrong_options(tiny_dataset):  # noqa: F811
    with pytest.raises(ValueError, match="train, val, test"):
        VideoDataset([], "eval")
    with pytest.raises(ValueError, match="decord, pyav"):
        KineticsDataModule(str(tiny_dataset), decoder="opencv")


def test_train_flip_can_be_turned_off_for_mirror_image_classes():
    from gcvideo.data.transforms import spatial_transform

    video = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)  # no symmetry
    torch.manual_seed(0)
    no_flip = spatial_transform("train", 8, 8, flip=False)
    assert all(torch.equal(no_flip(video), video) for _ in range(20))
    with_flip = spatial_transform("train", 8, 8)
    assert any(torch.equal(with_flip(video), video.flip(-1)) for _ in range(20))


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


def test_a_bad_test_video_is_tried_once_for_all_its_views(tmp_path, monkeypatch):
    import gcvideo.data.video_dataset as vd

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    calls = []
    real = vd.decode_frames
    monkeypatch.setattr(vd, "decode_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    dataset = VideoDataset([VideoRecord(str(garbage), 0)], "test", frames=2, stride=1, short_side=8, crop=8,
                           clips=2, crops=3)
    items = [dataset[i] for i in range(len(dataset))]
    assert not any(bool(it["valid"]) for it in items) and len(calls) == 1


def test_a_dataset_holds_no_python_object_per_video():
    """The videos live in numpy columns: DataLoader workers share them instead of copying them as they read
    (reading a Python object writes its reference count). ``scripts/bench_scale.py`` measures the memory."""
    from gcvideo.data import VideoTable

    n = 5000
    table = VideoTable([f"videos/train/c{i % 400}/{i:011d}_000000_000010.mp4" for i in range(n)], np.arange(n) % 400)
    ds = VideoDataset(table, "train")

    def containers(obj, depth=0):
        if isinstance(obj, (list, tuple, dict, set)):
            yield obj
        if depth < 3:
            for value in (vars(obj).values() if hasattr(obj, "__dict__") else obj.values() if isinstance(obj, dict)
                          else ()):
                yield from containers(value, depth + 1)

    assert not [c for c in containers(ds) if len(c) >= n]
    assert ds.table.paths.buffer.dtype == np.uint8 and ds.table.labels.dtype == np.int32
    assert ds.video_paths[7] == table.path(7) and ds.table.label(7) == 7


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
    from gcvideo.data.bad_videos import encode_failures

    failures = [encode_failures([(p, "missing")]) if p else "" for p in paths]
    return {"label": torch.zeros(len(paths)), FAILURE_KEY: failures}


def test_a_missing_file_in_predict_says_what_happens_to_it(tiny_dataset, caplog):  # noqa: F811
    # issue 11: predict is not "this test dataset"
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
