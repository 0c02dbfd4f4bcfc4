"""``vsr restore``: regenerate the masked (occluded) parts of faces in images or a folder of images.

Per image: read it with ``vsr.media.image`` (8- or 16-bit, grey, RGB or RGBA; EXIF orientation
applied, ICC profile and EXIF carried to the output) and its mask (a mask image, white = missing,
or every pixel within ``--tolerance`` of ``--mask-color``); find the face with the detector and
align it by its five landmarks to the aligned-chip positions the model was trained on
(``occlusion.ALIGNED_LANDMARKS``), or take the whole image as the face (``--no-detect``, or when
no face is found, which the report says); warp image and mask to the model's side, inpaint, warp the
prediction back; blend the seam (the prediction is shifted to meet the known pixels around the
mask, fading inwards); keep every pixel outside the mask unchanged, bit for bit.  Mask pixels
the face window does not cover are filled by OpenCV's Telea inpainting (counted in the report).
``--scale 2|4`` then super-resolves the restored image with the face SR model.

Outputs and the JSON report are written atomically; in a folder run an image that fails is
reported and the others still complete (exit 3).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vsr.atomic import write_atomic
from vsr.errors import InputError, OutputError, UsageError
from vsr.media.image import IMAGE_SUFFIXES, WRITE_SUFFIXES, read_image, to_uint8, write_image

MODEL_SIDE = 64  # restore-face's training side (data.hr_size); other .safetensors: same unless told
TELEA_RADIUS = 5


@dataclass
class RestoreOptions:
    """How ``vsr restore`` runs."""

    model: str = "restore-face"
    side: int = MODEL_SIDE
    detect: bool = True
    detector: str = "auto"
    scale: int = 1  # 1, 2 or 4: super-resolve after restoring
    sr_model: str | None = None  # default: the face SR model of the scale
    device: str = "auto"
    tolerance: int = 0  # --mask-color tolerance (8-bit units)


@dataclass
class ImageResult:
    """One image of a run."""

    input: str
    output: str | None = None
    mask: str | None = None
    status: str = "ok"  # ok | failed
    error: str | None = None
    width: int = 0
    height: int = 0
    dtype: str = ""
    masked_pixels: int = 0
    masked_fraction: float = 0.0
    face: str = ""  # detected | whole image (--no-detect) | no face found: whole image
    face_box: list[float] | None = None  # x0, y0, x1, y1 of the aligned window in the image
    outside_face_pixels: int = 0  # mask pixels outside the face window, filled by OpenCV Telea
    output_width: int = 0
    output_height: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the output format could not carry (vsr.media.image)


@dataclass
class RestoreReport:
    """The JSON report of ``vsr restore --report``."""

    model: str
    model_sha256: str | None
    sr_model: str | None
    scale: int
    images: list[ImageResult] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- masks (images are read and written by ``vsr.media.image``) ----


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask image (white = missing) as (H, W) bool, checked against the image's ``shape``."""
    pixels = read_image(path).pixels  # upright RGB, 8- or 16-bit; a mask's alpha is not looked at
    if pixels.shape[:2] != shape:
        raise InputError(
            f"--mask {path} is {pixels.shape[1]}x{pixels.shape[0]} but the image is {shape[1]}x{shape[0]}"
        )
    peak = np.iinfo(pixels.dtype).max
    return check_mask(pixels.max(axis=-1) > peak // 2, f"--mask {path}")


def mask_from_color(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int) -> np.ndarray:
    """Pixels within ``tolerance`` (8-bit units, every channel) of the painted colour ``rgb``."""
    scale = 257 if image.dtype == np.uint16 else 1
    colour = np.asarray(rgb, np.int64) * scale
    pixels = image.astype(np.int64)
    if image.ndim == 2:
        if not (rgb[0] == rgb[1] == rgb[2]):
            raise InputError(
                f"--mask-color {','.join(map(str, rgb))}: the image is grey; give a grey colour R=G=B"
            )
        diff = np.abs(pixels - colour[0])
    else:
        diff = np.abs(pixels[..., :3] - colour).max(axis=-1)
    mask = diff <= tolerance * scale
    if not mask.any():
        raise InputError(
            f"--mask-color {','.join(map(str, rgb))} matches no pixel (--tolerance {tolerance}); "
            "check the colour or raise --tolerance"
        )
    return check_mask(mask, f"--mask-color {','.join(map(str, rgb))}")


def check_mask(mask: np.ndarray, what: str) -> np.ndarray:
    if not mask.any():
        raise InputError(f"{what} marks no pixel as missing (white = missing): nothing to restore")
    if mask.all():
        raise InputError(f"{what} marks every pixel as missing: nothing left to restore from")
    return mask


# ---- pixels ----


def _rgb(image: np.ndarray) -> np.ndarray:
    """The colour channels of grey, RGB or RGBA pixels as (H, W, 3), same dtype."""
    return image[..., :3] if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)


def _to_rgb_float(image: np.ndarray) -> np.ndarray:
    return _rgb(image).astype(np.float32) / float(np.iinfo(image.dtype).max)


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    return to_uint8(np.ascontiguousarray(_rgb(image)))


class Restorer:
    """A loaded inpainting model (plus the detector and, for ``scale`` > 1, the SR model)."""

    def __init__(self, options: RestoreOptions) -> None:
        import torch

        from vsr.models.registry import REGISTRY, load_model_from
        from vsr.pipelines.device import resolve_device

        self.options = options
        if options.scale not in (1, 2, 4):
            raise UsageError(f"--scale must be 2 or 4 (or left out), got {options.scale}")
        loaded = load_model_from(options.model, 1)
        if not hasattr(loaded.module, "downsamples"):
            raise UsageError(f"--model {options.model} is not an inpainting model (use restore-face)")
        self.model_name, self.sha256 = loaded.name, loaded.sha256
        spec = REGISTRY.get(options.model)
        self.side = int(spec.arch.get("size", options.side)) if spec is not None else options.side
        self.device = resolve_device(options.device)
        self.module = loaded.module.to(self.device).eval()
        self._torch = torch
        self.detector = None
        if options.detect:
            from vsr.pipelines.face.detect import make_detector

            self.detector = make_detector(options.detector)
        self.upscaler = None
        self.sr_name = None
        if options.scale > 1:
            from vsr.models.registry import DEFAULT_FACE_MODEL
            from vsr.pipelines.upscale import Upscaler

            self.sr_name = options.sr_model or DEFAULT_FACE_MODEL.get(
                options.scale, f"face-x{options.scale}-psnr"
            )
            sr = load_model_from(self.sr_name, options.scale)
            self.upscaler = Upscaler(sr.module, options.scale, self.device)

    def _align(self, image: np.ndarray, result: ImageResult) -> np.ndarray:
        """2x3 affine taking image pixels to model-chip pixels."""
        from vsr.pipelines.face.align import similarity_transform
        from vsr.pipelines.restore.occlusion import aligned_landmarks, detect_landmarks

        h, w = image.shape[:2]
        if self.detector is not None:
            landmarks = detect_landmarks(self.detector, _to_uint8_rgb(image))
            if landmarks is not None:
                try:
                    matrix = similarity_transform(landmarks, aligned_landmarks(self.side, self.side))
                except ValueError:  # all five landmarks on one point: no usable face
                    matrix = None
                if matrix is not None:
                    result.face = "detected"
                    return matrix
            result.face = "no face found: whole image"
        else:
            result.face = "whole image (--no-detect)"
        return np.array([[self.side / w, 0, 0], [0, self.side / h, 0]], np.float64)

    def _predict(self, chip: np.ndarray, chip_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(chip.transpose(2, 0, 1).copy())[None].to(self.device)
        m = torch.from_numpy(chip_mask.astype(np.float32))[None, None].to(self.device)
        with torch.no_grad():
            y = self.module(x, m).float().cpu()[0].numpy().transpose(1, 2, 0)
        return np.clip(y, 0, 1)

    def restore(self, image: np.ndarray, mask: np.ndarray, result: ImageResult | None = None) -> np.ndarray:
        """The restored image: same shape and dtype; pixels outside ``mask`` unchanged (bit-exact)."""
        import cv2

        result = result if result is not None else ImageResult(input="")
        if mask.shape != image.shape[:2]:
            raise InputError(
                f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}"
            )
        check_mask(mask, "the mask")
        h, w = image.shape[:2]
        rgb = _to_rgb_float(image)
        m = self._align(image, result)  # image pixels -> chip pixels
        side = self.side
        k = math.sqrt(abs(np.linalg.det(m[:, :2])))
        src, src_mask, m_src = rgb, mask.astype(np.float32), m
        if k < 0.5:  # shrink image and mask by area first so the warp does not alias
            sw, sh = max(1, round(w * 2 * k)), max(1, round(h * 2 * k))
            src = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
            src_mask = cv2.resize(src_mask, (sw, sh), interpolation=cv2.INTER_AREA)
            m_src = np.hstack([m[:, :2] @ np.diag([w / sw, h / sh]), m[:, 2:]])
        chip = cv2.warpAffine(
            src, m_src, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        # any chip pixel the mask touches is missing
        chip_mask = cv2.warpAffine(src_mask, m_src, (side, side), flags=cv2.INTER_LINEAR) > 0.01
        pred = self._predict(chip, chip_mask)
        inv = cv2.WARP_INVERSE_MAP
        pred_full = cv2.warpAffine(
            pred, m, (w, h), flags=cv2.INTER_CUBIC | inv, borderMode=cv2.BORDER_REPLICATE
        )
        cover = cv2.warpAffine(np.ones((side, side), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST | inv) > 0
        corners = cv2.transform(np.float32([[[0, 0]], [[side, side]]]), cv2.invertAffineTransform(m))
        result.face_box = [round(float(v), 1) for v in corners.reshape(-1)]
        outside = mask & ~cover
        result.outside_face_pixels = int(outside.sum())
        if outside.any():
            telea = cv2.inpaint(
                _to_uint8_rgb(image), outside.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA
            )
            pred_full[outside] = telea[outside].astype(np.float32) / 255
        face_side = side / k
        blended = blend_seam(rgb, np.clip(pred_full, 0, 1), mask, feather=max(2.0, 0.03 * face_side))
        return compose(image, blended, mask)

    def upscale(self, image: np.ndarray) -> np.ndarray:
        """Super-resolve a restored image with the face SR model (``--scale``)."""
        if self.upscaler is None:
            return image
        alpha = image[..., 3] if image.ndim == 3 and image.shape[2] == 4 else None
        (out,) = self.upscaler([np.ascontiguousarray(_rgb(image))])
        if image.ndim == 2:
            return np.rint(out.astype(np.float32).mean(axis=2)).astype(image.dtype)
        if alpha is not None:
            import cv2

            big = cv2.resize(alpha, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_LINEAR)
            return np.dstack([out, big.astype(out.dtype)])
        return out


def blend_seam(known: np.ndarray, pred: np.ndarray, mask: np.ndarray, feather: float) -> np.ndarray:
    """Shift the prediction inside ``mask`` to meet the known pixels at its edge, fading over ``feather`` px.

    The offset (known - predicted) on a thin ring just outside the mask is spread inwards by a
    normalised Gaussian and weighted by exp(-distance / feather): no visible step at the seam, the
    raw prediction deep inside.  Float RGB in [0, 1]; pixels outside the mask are the caller's.
    """
    import cv2

    m8 = mask.astype(np.uint8)
    ring = (cv2.dilate(m8, np.ones((5, 5), np.uint8)) > 0) & ~mask
    if not ring.any():
        return pred
    offset = np.where(ring[..., None], known - pred, 0).astype(np.float32)
    weight = ring.astype(np.float32)
    sigma = max(1.0, feather)
    spread = (
        cv2.GaussianBlur(offset, (0, 0), sigma)
        / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-6)[..., None]
    )
    dist = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    fade = np.exp(-dist / sigma)[..., None]
    return np.clip(pred + spread * fade * mask[..., None], 0, 1)


def compose(image: np.ndarray, restored_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the masked pixels replaced by ``restored_rgb`` (float RGB in [0, 1]), same dtype/channels."""
    peak = float(np.iinfo(image.dtype).max)
    values = np.clip(np.rint(restored_rgb * peak), 0, peak).astype(image.dtype)
    out = image.copy()
    if image.ndim == 2:
        grey = np.clip(np.rint(restored_rgb.mean(axis=2) * peak), 0, peak).astype(image.dtype)
        out[mask] = grey[mask]
    else:
        out[..., :3][mask] = values[mask]
    return out


# ---- one image, a folder ----


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _mask_for(image: Path, masks: Path) -> Path | None:
    exact = masks / image.name
    if exact.is_file():
        return exact
    for p in sorted(masks.glob(image.stem + ".*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return p
    return None


def plan(
    input_path: Path, output: Path, mask: Path | None, mask_color: tuple[int, int, int] | None
) -> list[tuple[Path, Path, Path | None]]:
    """(image, output, mask file or None for --mask-color) per image; usage and missing-mask errors up front."""
    if (mask is None) == (mask_color is None):
        raise UsageError("give exactly one of --mask MASK and --mask-color R,G,B")
    if not input_path.exists():
        raise InputError(f"input not found: {input_path}")
    if mask is not None and not mask.exists():
        raise InputError(f"--mask {mask} not found")
    if input_path.is_file():
        if mask is not None and mask.is_dir():
            found = _mask_for(input_path, mask)
            if found is None:
                raise InputError(f"--mask {mask}: no mask named like {input_path.name}")
            mask = found
        if output.is_dir():
            output = output / input_path.name
        _check_output(input_path, output)
        return [(input_path, output, mask)]
    images = _images_in(input_path)
    if not images:
        raise InputError(f"{input_path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output} is a file; a folder input needs an output folder")
    jobs = []
    missing = []
    for image in images:
        m = mask
        if mask is not None and mask.is_dir():
            m = _mask_for(image, mask)
            if m is None:
                missing.append(image.name)
        jobs.append((image, output / image.name, m))
    if missing:
        raise InputError(
            f"--mask {mask}: no mask for {len(missing)} of {len(images)} images (first: {missing[0]}); "
            "name each mask like its image"
        )
    for image, out, _ in jobs:
        _check_output(image, out)
    return jobs


def _check_output(image: Path, output: Path) -> None:
    if output.resolve() == image.resolve():
        raise OutputError(f"output {output} is the input; give another file or folder")
    if output.suffix.lower() not in WRITE_SUFFIXES:
        raise OutputError(f"output {output}: give an image file name ({', '.join(WRITE_SUFFIXES)})")


def restore_one(
    restorer: Restorer, image_path: Path, out: Path, mask_path: Path | None, mask_color
) -> ImageResult:
    """Restore one file and publish it atomically; raises the image's ``VsrError``.

    The file is read and written by ``vsr.media.image`` (bit depth, EXIF orientation, ICC profile,
    grey storage and alpha carried); a grey file is restored as grey, its alpha is never touched.
    """
    start = time.perf_counter()
    result = ImageResult(input=str(image_path), mask=str(mask_path) if mask_path else None)
    source = read_image(image_path)
    image = source.pixels[..., 0] if source.grey else source.pixels
    result.height, result.width = image.shape[:2]
    result.dtype = str(image.dtype)
    if mask_path is not None:
        mask = read_mask(mask_path, image.shape[:2])
    else:
        mask = mask_from_color(image, mask_color, restorer.options.tolerance)
    result.masked_pixels = int(mask.sum())
    result.masked_fraction = round(float(mask.mean()), 6)
    restored = restorer.upscale(restorer.restore(image, mask, result))
    if restored.ndim == 2:
        restored = np.repeat(restored[:, :, None], 3, axis=2)  # written back as one channel (source.grey)
    if not out.parent.is_dir():
        raise OutputError(f"output folder {out.parent} does not exist")
    result.notes = write_image(out, restored, like=source)
    result.output = str(out)
    result.output_height, result.output_width = restored.shape[:2]
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def run_restore(
    input_path: Path,
    output: Path,
    options: RestoreOptions,
    mask: Path | None = None,
    mask_color: tuple[int, int, int] | None = None,
    report: Path | None = None,
) -> RestoreReport:
    """Restore an image or every image of a folder; returns (and with ``report`` writes) the report.

    A single image raises its error; in a folder a failing image is recorded and the rest continue.
    """
    from vsr.errors import VsrError, one_line

    start = time.perf_counter()
    jobs = plan(input_path, output, mask, mask_color)
    if report is not None and not report.parent.is_dir():
        raise OutputError(f"--report {report}: folder {report.parent} does not exist")
    restorer = Restorer(options)
    rep = RestoreReport(
        model=restorer.model_name,
        model_sha256=restorer.sha256,
        sr_model=restorer.sr_name,
        scale=options.scale,
    )
    if input_path.is_dir():
        output.mkdir(parents=True, exist_ok=True)
    for image, out, m in jobs:
        try:
            rep.images.append(restore_one(restorer, image, out, m, mask_color))
            rep.ok += 1
        except VsrError as exc:
            if input_path.is_file():
                raise
            rep.images.append(
                ImageResult(
                    input=str(image), mask=str(m) if m else None, status="failed", error=one_line(exc)
                )
            )
            rep.failed += 1
    if any(r.face.startswith("no face") for r in rep.images):
        rep.notes.append("no face was found in some images: the whole image was taken as the face")
    if options.scale > 1:
        rep.notes.append(f"--scale {options.scale}: pixels outside the mask are super-resolved, not kept")
    rep.seconds = round(time.perf_counter() - start, 3)
    if report is not None:
        write_atomic(report, json.dumps(rep.to_dict(), indent=2) + "\n")
    return rep
