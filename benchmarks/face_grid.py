"""Side-by-side face crops: bicubic | each model | HR, to look at what a GAN model adds to a PSNR one.

    python benchmarks/face_grid.py --scale 4 --models face-x4-psnr face-x4 \
        --out benchmarks/results/face_x4_grid.jpg [--faces 5] [--zoom 2]

Faces: every ``len/faces``-th image of ``../shared/data/faces/val`` (held out from training), cropped to
the eyes-nose-mouth region.  LR = ``vsr eval``'s protocol (MATLAB bicubic, antialiased, 8-bit); every
model runs through the same ``Upscaler`` as ``vsr enhance``.  Column order is printed on stdout, with
the faces' mean ``sharpness`` per column (``vsr.pipelines.metrics.sharpness`` of the crop vs HR).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from vsr.models.registry import load_model_from
from vsr.pipelines.evaluate.protocol import bicubic_downscale, modcrop
from vsr.pipelines.metrics import rgb_to_y, sharpness
from vsr.pipelines.upscale import Upscaler

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces" / "val"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--models", nargs="+", required=True, help="registry names or weights files")
    ap.add_argument("--out", type=Path, required=True, help=".jpg or .png")
    ap.add_argument("--faces", type=int, default=5)
    ap.add_argument("--zoom", type=int, default=2, help="nearest-neighbour enlargement of the grid")
    args = ap.parse_args()
    files = sorted(FACES.glob("*.jpg"))
    files = files[:: max(1, len(files) // args.faces)][: args.faces]
    columns = ["bicubic", *args.models, "HR"]
    upscalers = [
        Upscaler(load_model_from(m, args.scale).module, args.scale, torch.device("cpu")) for m in args.models
    ]
    bicubic = Upscaler(load_model_from("bicubic", args.scale).module, args.scale, torch.device("cpu"))
    rows, sharp = [], {c: [] for c in columns}
    for path in files:
        hr = modcrop(cv2.imread(str(path))[:, :, ::-1], args.scale)
        lr = bicubic_downscale(hr, args.scale)
        outs = [bicubic([lr])[0], *[u([lr])[0] for u in upscalers], hr]
        h, w = hr.shape[:2]
        crops = [o[h // 4 : h * 3 // 4, w // 6 : w * 5 // 6] for o in outs]
        for c, crop in zip(columns, crops, strict=True):
            sharp[c].append(sharpness(rgb_to_y(crop), rgb_to_y(crops[-1])))
        rows.append(
            np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in crops], 1)
        )
    grid = np.concatenate(rows, 0)
    grid = cv2.resize(grid, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_NEAREST)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(
        json.dumps(
            {
                "columns": columns,
                "faces": [p.name for p in files],
                "sharpness": {c: round(float(np.mean(v)), 3) for c, v in sharp.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
