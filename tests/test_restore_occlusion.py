"""The synthetic occlusion generator: seeded, every kind and fill, placed on landmarks, pixels outside untouched."""

from __future__ import annotations

import numpy as np
import pytest
from restore_fixtures import chip

from vsr.pipelines.restore.occlusion import (
    FILLS,
    KINDS,
    aligned_landmarks,
    make_mask,
    occlude,
    paint,
)

LANDMARKS = np.float32([[20, 22], [44, 22], [32, 34], [24, 46], [40, 46]])


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_occlusion_other_seed_other(kind):
    image = chip(0)
    a = occlude(image, kind, np.random.default_rng([3, 1]), LANDMARKS)
    b = occlude(image, kind, np.random.default_rng([3, 1]), LANDMARKS)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.image, b.image) and a.fill == b.fill
    masks = {occlude(image, kind, np.random.default_rng([s]), LANDMARKS).mask.tobytes() for s in range(6)}
    assert len(masks) > 1  # the seed matters
    assert a.mask.dtype == bool and a.mask.shape == image.shape[:2]
    assert 0 < a.mask.mean() < 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fill", FILLS)
def test_pixels_outside_the_mask_are_untouched_8_and_16_bit(kind, fill):
    rng = np.random.default_rng(5)
    for image in (chip(1), chip(1).astype(np.uint16) * 257 + 3):
        texture = np.random.default_rng(9).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        occ = occlude(image, kind, rng, LANDMARKS, fill, texture)
        assert occ.image.dtype == image.dtype
        assert np.array_equal(occ.image[~occ.mask], image[~occ.mask])
        assert not np.array_equal(occ.image[occ.mask], image[occ.mask])


def test_eye_and_mouth_bands_sit_on_the_landmarks():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        eyes, placed, _ = make_mask("eyes", (64, 64), rng, LANDMARKS)
        assert placed == "landmarks"
        assert eyes[22, 20] and eyes[22, 44] and not eyes[46, 32] and not eyes[5, 32]
        mouth, _, _ = make_mask("mouth", (64, 64), rng, LANDMARKS)
        assert mouth[46, 32] and mouth[46, 24] and not mouth[22, 20]
    # moved landmarks move the band: it follows the detector, not a fixed position
    low = LANDMARKS + np.float32([0, 10])
    moved, _, _ = make_mask("eyes", (64, 64), np.random.default_rng(0), low)
    assert moved[32, 20] and not moved[14, 20]


def test_without_landmarks_the_aligned_position_is_used_and_said():
    mask, placed, _ = make_mask("eyes", (100, 100), np.random.default_rng(0), None)
    assert placed == "aligned"
    (lx, ly), (rx, ry) = aligned_landmarks(100, 100)[:2]
    assert mask[int(ly), int(lx)] and mask[int(ry), int(rx)]
    _, placed, _ = make_mask("rect", (100, 100), np.random.default_rng(0), None)
    assert placed == "-"


def test_every_half_is_drawn_and_splits_at_the_face():
    sides = {}
    for seed in range(40):
        mask, _, side = make_mask("half", (64, 64), np.random.default_rng(seed), LANDMARKS)
        sides[side] = mask
    assert set(sides) == {"left", "right", "top", "bottom"}
    assert sides["left"][:, 0].all() and not sides["left"][:, -1].any() and sides["left"][0, 29]
    assert sides["top"][0].all() and not sides["top"][-1].any() and 0.4 < sides["top"].mean() < 0.6


def test_fills():
    image, mask = chip(0), np.zeros((64, 64), bool)
    mask[10:30, 10:40] = True
    solid = paint(image, mask, "solid", np.random.default_rng(0))
    assert len(np.unique(solid[mask].reshape(-1, 3), axis=0)) == 1
    noise = paint(image, mask, "noise", np.random.default_rng(0))
    assert len(np.unique(noise[mask].reshape(-1, 3), axis=0)) > 100
    texture = np.zeros((50, 50, 3), np.uint8)
    texture[..., 1] = 200  # a green image: its patch shows up in the mask
    tex = paint(image, mask, "texture", np.random.default_rng(0), texture)
    assert (tex[mask][:, 1] == 200).all() and (tex[mask][:, 0] == 0).all()
    with pytest.raises(ValueError, match="unknown occluder"):
        paint(image, mask, "glitter", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown occlusion"):
        make_mask("ears", (64, 64), np.random.default_rng(0))
