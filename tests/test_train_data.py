"""Degradations, the H.264 round trip, the images and videos data kinds."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from train_fixtures import SHARED_DATA, face_image, make_images, tiny_flags

from vsr.errors import DataError
from vsr.media.transcode import h264_roundtrip, sample_frames
from vsr.pipelines.train.config import DegradeConfig
from vsr.pipelines.train.config_toml import resolve
from vsr.pipelines.train.data import TrainSamples, build_datasets, index_images, index_videos
from vsr.pipelines.train.degrade import degrade, downscale, occlude


@pytest.fixture
def hr():
    return face_image(32, 32, ((10, 11), (22, 11)), seed=3)


def test_degradations_are_deterministic_per_seed_and_change_the_image(hr):
    cfg = DegradeConfig(blur_prob=1, noise_prob=1, jpeg_prob=1, h264_prob=1)
    a = degrade(hr, 2, cfg, np.random.default_rng([7, 0, 1]))
    b = degrade(hr, 2, cfg, np.random.default_rng([7, 0, 1]))
    c = degrade(hr, 2, cfg, np.random.default_rng([7, 0, 2]))
    assert a.lr.shape == (16, 16, 3) and a.lr.dtype == np.uint8
    assert np.array_equal(a.lr, b.lr) and a.ops == b.ops
    assert not np.array_equal(a.lr, c.lr)
    assert [op.split("(")[0] for op in a.ops] == ["blur", "down", "noise", "jpeg", "h264"]
    clean = downscale(hr, 2, "cubic")
    assert np.abs(a.lr.astype(int) - clean.astype(int)).mean() > 1  # the degradations did something
    assert not a.mask.any()


def test_downscale_kernels_differ_and_keep_brightness(hr):
    outs = {k: downscale(hr, 4, k) for k in ("cubic", "linear", "area")}
    assert all(o.shape == (8, 8, 3) for o in outs.values())
    assert not np.array_equal(outs["cubic"], outs["linear"]) and not np.array_equal(
        outs["cubic"], outs["area"]
    )
    for o in outs.values():
        assert abs(float(o.mean()) - float(hr.mean())) < 3


def test_occlusions_return_their_mask(hr):
    rng = np.random.default_rng(0)
    for kind in ("half", "eyes", "block"):
        img, mask = occlude(hr, kind, rng)
        assert mask.shape == (32, 32) and 0 < mask.mean() < 1
        assert np.array_equal(img[mask == 0], hr[mask == 0])
        assert not np.array_equal(img[mask == 1], hr[mask == 1])
    out = degrade(hr, 2, DegradeConfig(occlusion_prob=1.0, occlusions=["eyes"]), np.random.default_rng(1))
    assert out.ops[0] == "occlude(eyes)" and out.mask.any()
    # off by default
    assert DegradeConfig().occlusion_prob == 0


def test_h264_roundtrip_odd_size_is_lossy_but_close():
    frames = [face_image(33, 25, ((10, 9), (22, 9)), seed=s) for s in range(3)]
    out = h264_roundtrip(frames, crf=30)
    assert len(out) == 3 and all(o.shape == (25, 33, 3) and o.dtype == np.uint8 for o in out)
    err = np.abs(out[0].astype(int) - frames[0].astype(int)).mean()
    assert 0 < err < 25
    assert all(np.array_equal(a, b) for a, b in zip(out, h264_roundtrip(frames, crf=30), strict=True))


def test_images_dataset_skips_and_counts_an_unreadable_file(tmp_path):
    root = make_images(tmp_path / "faces", count=3, size=(24, 20))  # smaller than hr_size: enlarged
    (root / "001.jpg").write_bytes(b"not a jpeg")
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run", **{"data.sources": [f"images:{root}"]}))
    index = index_images(root)
    samples = TrainSamples(index.items, index.frames, cfg)
    results = [samples[p] for p in range(6)]  # two epochs: the broken file is drawn twice
    skipped = [s for r in results for s in r["skipped"].split("\n") if s]
    assert len(skipped) == 2 and all(s.endswith("001.jpg") for s in skipped)
    assert all(r["hr"].shape == (3, 32, 32) for r in results)
    # the same position gives the same sample
    assert np.array_equal(samples[4]["lr"].numpy(), results[4]["lr"].numpy())


def test_unreadable_everything_and_empty_folders_are_data_errors(tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"x")
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run", **{"data.sources": [f"images:{root}"]}))
    with pytest.raises(DataError, match="none of the 1 images could be read"):
        TrainSamples(index_images(root).items, [], cfg)[0]
    (root / "a.jpg").unlink()
    with pytest.raises(DataError, match=r"data.sources images:.*broken: no usable samples"):
        build_datasets(cfg)
    with pytest.raises(DataError, match="not found"):
        index_images(tmp_path / "nowhere")


def _write_video(path, frames=9, size=(48, 40)):
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = face_image(w, h, ((18 + i, 15), (30 + i, 15)), seed=i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_videos_are_sampled_every_nth_frame(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    _write_video(clips / "a.mp4")
    _write_video(clips / "b.mp4", frames=4)
    (clips / "c.mp4").write_bytes(b"broken")
    frames = list(sample_frames(clips / "a.mp4", every=3))
    assert len(frames) == 3 and frames[0].shape == (40, 48, 3) and frames[0].dtype == np.uint8
    assert len(list(sample_frames(clips / "a.mp4", every=1, limit=2))) == 2
    cfg = resolve(
        flags=tiny_flags(
            clips, tmp_path / "run", **{"data.sources": [f"videos:{clips}"], "data.frame_every": 3}
        )
    )
    index = index_videos(clips, cfg)
    assert len(index.items) == 3 + 2 and index.skipped == [str(clips / "c.mp4")]
    train_set, val_set, skipped = build_datasets(cfg)
    assert {i.group for i in train_set.items}.isdisjoint({i.group for i in val_set.items})
    assert train_set[0]["hr"].shape == (3, 32, 32) and skipped == [str(clips / "c.mp4")]


@pytest.mark.needs_shared
@pytest.mark.skipif(not (SHARED_DATA / "faces" / "train").is_dir(), reason="../shared/data is absent")
def test_real_face_images_and_video(tmp_path):
    faces = SHARED_DATA / "faces" / "train"
    cfg = resolve(
        flags=tiny_flags(faces, tmp_path / "run", **{"data.sources": [f"images:{faces}"], "data.hr_size": 64})
    )
    index = index_images(faces)
    assert len(index.items) > 1000
    sample = TrainSamples(index.items, [], cfg)[0]
    assert sample["hr"].shape == (3, 64, 64) and sample["lr"].shape == (3, 32, 32) and sample["skipped"] == ""
    video = sorted((SHARED_DATA / "videos").glob("*.mp4"))[0]
    frames = list(sample_frames(video, every=10, limit=2))
    assert len(frames) == 2 and frames[0].ndim == 3 and frames[0].shape[2] == 3
