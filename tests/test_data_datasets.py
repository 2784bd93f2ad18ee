import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from data_fixtures import bad_files, ramp_video, tiny_dataset  # noqa: F401
from gcvideo.data import KineticsDataModule, VideoDataset, VideoFilesDataset, VideoRecord
from gcvideo.data.transforms import long_side_crop

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
    assert KineticsDataModule(str(tiny_dataset / "videos")).num_classes == 400  # shipped K400 list


@pytest.mark.parametrize("stage,size", [("train", 20), ("val", 20), ("test", 24)])
def test_item_shapes_and_dtypes(dm, stage, size):
    batch = dm.on_after_batch_transfer(next(iter(getattr(dm, f"{stage}_dataloader")())), 0)  # uint8 train -> float
    n = min(4, len(getattr(dm, f"{stage}_dataset")))
    assert batch["video"].shape == (n, 3, 4, size, size) and batch["video"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["video_index"].dtype == torch.int64
    assert batch["valid"].dtype == torch.bool and bool(batch["valid"].all())
    assert (stage == "test") == ("clip_index" in batch)
    assert -3 < float(batch["video"].mean()) < 3  # normalised


def test_test_view_order(dm):
    ds = dm.test_dataset
    assert ds.views_per_video == 6 and len(ds) == ds.num_videos * 6 == 36 and len(ds.video_paths) == 6
    for index in range(len(ds)):
        item = ds[index]
        v, c, k = int(item["video_index"]), int(item["clip_index"]), int(item["crop_index"])
        assert index == v * 6 + c * 3 + k


def test_distributed_sampler_covers_every_view(dm):
    ds = dm.test_dataset
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        for batch in DataLoader(ds, batch_size=5, sampler=sampler):
            seen += (batch["video_index"] * 6 + batch["clip_index"] * 3 + batch["crop_index"]).tolist()
    assert set(seen) == set(range(len(ds)))


def test_windows_and_crops(tmp_path):
    from gcvideo.data.synth import write_mp4

    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12, 24, 48), 8)
    ds = VideoFilesDataset([path], frames=3, stride=2, short_side=24, crop=24, clips=3, crops=3, mean=(0, 0, 0),
                           std=(1 / 255,) * 3)
    first = [ds[i]["video"][0, :, 0, 0].round().tolist() for i in (0, 3, 6)]  # crop 0 of clips 0, 1, 2
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
    assert all(it["video"].shape == (3, 4, 20, 20) for it in items)
    if mode == "train":  # replaced by the good video
        assert all(bool(it["valid"]) and int(it["video_index"]) == 1 for it in items)
    else:
        assert not any(bool(it["valid"]) for it in items) and float(items[0]["video"].abs().sum()) == 0
    assert ds.bad_videos == {str(bad_files[kind]): ds.bad_videos[str(bad_files[kind])]}
    assert sum(str(bad_files[kind]) in r.getMessage() for r in caplog.records) == 1  # logged once


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
