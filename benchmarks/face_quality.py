"""Does face mode improve faces?  PSNR/SSIM and flicker inside the face boxes of real clips.

    python benchmarks/face_quality.py [--scale 2] [--frames 24] [--clips talking_d0,stage_hamilton]
                                      [--model M] [--face-model F] [--detector auto] [--device auto]

Protocol, per clip (from ``../shared/data/videos``):
1. the first ``--frames`` frames, cropped to a multiple of the scale, are the ground truth (HR);
2. faces are detected on the HR frames (the boxes the scores are measured in; boxes under 24 px skipped);
3. LR = MATLAB bicubic downscale (antialiased, ``vsr.models.resample.resize``);
4. the LR clip is upscaled four ways, in Python without a video encode: bicubic, Lanczos, frame mode
   (``--model`` on whole frames) and face mode (``FaceStage``: ``--face-model`` on tracked faces,
   detected on the LR frames, pasted into the ``--model`` background);
5. inside every HR face box: PSNR and SSIM on the Y channel (BT.601), averaged over boxes, and
   flicker = mean |(out_t - out_t-1) - (hr_t - hr_t-1)| on Y (temporal change that the ground truth
   does not have, in 8-bit levels; lower is steadier); plus whole-frame Y PSNR.

Prints one JSON object.  Until trained weights ship, ``--model`` and the face model default to Lanczos,
so face mode should match frame mode within noise (~0 dB): the script measures the machinery, and
the gain once ``--face-model`` / ``--model`` name trained weights (registry names or files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vsr.pipelines.evaluate.protocol import bicubic_downscale
from vsr.pipelines.metrics import psnr, ssim
from vsr.pipelines.metrics import rgb_to_y as luma

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
MIN_BOX = 24


def read_clip(path: Path, limit: int, scale: int) -> list[np.ndarray]:
    from vsr.media.reader import VideoReader

    frames = []
    with VideoReader(path) as reader:
        for frame in reader.frames():
            h, w = frame.image.shape[:2]
            frames.append(np.ascontiguousarray(frame.image[: h - h % scale, : w - w % scale]))
            if len(frames) >= limit:
                break
    return frames


def face_boxes(detector, frames: list[np.ndarray]) -> list[list[tuple[int, int, int, int]]]:
    """Integer HR boxes, clipped to the frame, at least MIN_BOX px on each side."""
    boxes = []
    for image in frames:
        h, w = image.shape[:2]
        found = []
        for det in detector(image):
            x0, y0, x1, y1 = (int(round(v)) for v in det.box)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 >= MIN_BOX and y1 - y0 >= MIN_BOX:
                found.append((x0, y0, x1, y1))
        boxes.append(found)
    return boxes


def score(outputs: list[np.ndarray], truth: list[np.ndarray], boxes) -> dict:
    """Face-box PSNR/SSIM/flicker and whole-frame PSNR (Y channel) of one method on one clip."""
    ys_out = [luma(o) for o in outputs]
    ys_hr = [luma(t) for t in truth]
    p, s, flick = [], [], []
    for t, frame_boxes in enumerate(boxes):
        for x0, y0, x1, y1 in frame_boxes:
            a, b = ys_out[t][y0:y1, x0:x1], ys_hr[t][y0:y1, x0:x1]
            p.append(psnr(a, b))
            s.append(ssim(a, b))
            if t:
                d_out = ys_out[t][y0:y1, x0:x1] - ys_out[t - 1][y0:y1, x0:x1]
                d_hr = ys_hr[t][y0:y1, x0:x1] - ys_hr[t - 1][y0:y1, x0:x1]
                flick.append(float(np.mean(np.abs(d_out - d_hr))))
    frame_psnr = float(np.mean([psnr(a, b) for a, b in zip(ys_out, ys_hr, strict=True)]))
    return {
        "face_psnr": round(float(np.mean(p)), 3) if p else None,
        "face_ssim": round(float(np.mean(s)), 4) if s else None,
        "face_flicker": round(float(np.mean(flick)), 3) if flick else None,
        "frame_psnr": round(frame_psnr, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=2, choices=(2, 4))
    parser.add_argument("--frames", type=int, default=24, help="frames per clip")
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: every clip)")
    parser.add_argument(
        "--model", default=None, help="frame/background model (default: the registry default)"
    )
    parser.add_argument(
        "--face-model", default=None, help="face model (default: face-xS if registered, else --model)"
    )
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--det-every", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    args = parser.parse_args(argv)

    from vsr.config import FaceOptions
    from vsr.models.registry import DEFAULT_MODEL, REGISTRY, load_model_from
    from vsr.pipelines.device import resolve_device, resolve_precision
    from vsr.pipelines.face.detect import make_detector
    from vsr.pipelines.face.stage import FaceStage
    from vsr.pipelines.upscale import Upscaler

    if not args.videos.is_dir():
        print(json.dumps({"skipped": f"no videos at {args.videos}"}))
        return 0
    names = args.clips.split(",") if args.clips else sorted(p.stem for p in args.videos.glob("*.mp4"))
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    model = args.model or DEFAULT_MODEL[args.scale]
    face_model = args.face_model or (f"face-x{args.scale}" if f"face-x{args.scale}" in REGISTRY else model)

    def upscaler(name: str, prec: str = precision) -> Upscaler:
        return Upscaler(load_model_from(name, args.scale).module, args.scale, device, prec)

    methods = {
        "bicubic": upscaler("bicubic", "fp32"),
        "lanczos": upscaler("lanczos", "fp32"),
        "frame": upscaler(model),
    }
    face_up = upscaler(face_model)
    hr_detector = make_detector(args.detector, 0.5)
    results, seconds = {}, {k: 0.0 for k in (*methods, "face")}
    for name in names:
        hr = read_clip(args.videos / f"{name}.mp4", args.frames, args.scale)
        boxes = face_boxes(hr_detector, hr)
        lr = list(bicubic_downscale(hr, args.scale))
        clip = {
            "frames": len(hr),
            "face_boxes": sum(map(len, boxes)),
            "size": [hr[0].shape[1], hr[0].shape[0]],
        }
        outputs = {}
        for key, up in methods.items():
            t0 = time.perf_counter()
            outputs[key] = up(lr)
            seconds[key] += time.perf_counter() - t0
        stage = FaceStage(
            FaceOptions(detector=args.detector, det_every=args.det_every),
            args.scale,
            face_up,
            methods["frame"],
        )
        t0 = time.perf_counter()
        outputs["face"] = stage.push(lr) + stage.flush()
        seconds["face"] += time.perf_counter() - t0
        clip["face_mode"] = stage.report()["faces"]
        clip["methods"] = {key: score(out, hr, boxes) for key, out in outputs.items()}
        results[name] = clip
        print(f"{name}: {json.dumps(clip['methods'])}", file=sys.stderr)

    def mean(method: str, metric: str):
        values = [
            c["methods"][method][metric] for c in results.values() if c["methods"][method][metric] is not None
        ]
        return round(float(np.mean(values)), 4) if values else None

    metrics = ("face_psnr", "face_ssim", "face_flicker", "frame_psnr")
    summary = {m: {k: mean(m, k) for k in metrics} for m in (*methods, "face")}
    gain = None
    if summary["face"]["face_psnr"] is not None and summary["lanczos"]["face_psnr"] is not None:
        gain = round(summary["face"]["face_psnr"] - summary["lanczos"]["face_psnr"], 3)
    total_frames = sum(c["frames"] for c in results.values())
    print(
        json.dumps(
            {
                "scale": args.scale,
                "model": model,
                "face_model": face_model,
                "detector": hr_detector.name,
                "device": str(device),
                "clips": results,
                "mean": summary,
                "face_psnr_gain_vs_lanczos_db": gain,
                "fps": {k: round(total_frames / v, 2) if v else None for k, v in seconds.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
