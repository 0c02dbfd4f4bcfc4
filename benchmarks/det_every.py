"""What does detecting faces every k-th frame cost in accuracy, and what does a smaller detection frame save?

    OMP_NUM_THREADS=1 python benchmarks/det_every.py [--frames 60] [--detector auto|haar|yuface]
        [--out benchmarks/results/det_every.json]

On the shared clips (``../shared/data/videos/*.mp4``), in one run:
- detector cost per frame (median ms) at the default detection resolution (``--det-upsample 0``: 2x for
  frames up to 1024 px), at the stream's resolution (``1``) and at half of it (``0.5``);
- for ``--det-every k`` (k = 1, 2, 3, 5): the tracked faces the face stage would paste (the tracker fed
  with the detections of every k-th frame, the stage's ``min_face`` filter) against the tracked faces of
  every-frame detection at the default resolution: the fraction of reference faces found (IoU >= 0.5),
  the mean IoU of the matched boxes, and faces that the reference does not have;
- the same comparison for every-frame detection at the reduced resolutions.
Detections are computed once per frame and resolution and reused for every k (a frame's detections do
not depend on k), so the run costs three detector passes over the frames.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
K_VALUES = (1, 2, 3, 5)
UPSAMPLES = {"default": None, "native": 1.0, "half": 0.5}
MIN_FACE = 12  # FaceOptions.min_face


def detect_all(detector, frames) -> tuple[list, list[float]]:
    out, ms = [], []
    for image in frames:
        t0 = time.perf_counter()
        out.append(detector(image))
        ms.append(1000 * (time.perf_counter() - t0))
    return out, ms


def tracked(detector, detections: list, det_every: int, frames: int) -> list[list]:
    """The boxes the face stage would paste at each frame, given per-frame detections and ``det_every``."""
    from vsr.pipelines.face.track import FaceTracker, Observation

    tracker = FaceTracker(det_every=det_every)
    for t in range(0, frames, det_every):
        obs = [Observation(detector.face_box(d), d.score, d.landmarks) for d in detections[t]]
        tracker.update(t, obs)
    tracker.finish()
    return [
        [f.box for f in tracker.faces_at(t) if f.box.side >= MIN_FACE and f.alpha > 0] for t in range(frames)
    ]


def compare(reference: list[list], candidate: list[list]) -> dict:
    """Greedy IoU matching per frame: recall at IoU >= 0.5, mean IoU of matches, unmatched extras."""
    from vsr.pipelines.face.detect import box_iou

    ref_total = found = extra = 0
    ious: list[float] = []
    for ref, cand in zip(reference, candidate, strict=True):
        ref_total += len(ref)
        pairs = sorted(
            ((box_iou(r.bounds(), c.bounds()), i, j) for i, r in enumerate(ref) for j, c in enumerate(cand)),
            reverse=True,
        )
        used_r, used_c = set(), set()
        for iou, i, j in pairs:
            if iou < 0.5 or i in used_r or j in used_c:
                continue
            used_r.add(i)
            used_c.add(j)
            ious.append(iou)
        found += len(used_r)
        extra += len(cand) - len(used_c)
    return {
        "reference_faces": ref_total,
        "recall": round(found / ref_total, 4) if ref_total else None,
        "mean_iou": round(statistics.fmean(ious), 4) if ious else None,
        "extra_faces": extra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60, help="frames decoded from the start of each clip")
    ap.add_argument("--videos", type=Path, default=VIDEOS)
    ap.add_argument("--detector", default="auto", help="as --detector of vsr enhance")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "det_every.json")
    args = ap.parse_args()

    import torch

    from vsr.atomic import write_atomic
    from vsr.pipelines.bench_stages import decode_frames
    from vsr.pipelines.face.detect import make_detector

    torch.set_num_threads(1)
    detectors = {name: make_detector(args.detector, 0.5, up) for name, up in UPSAMPLES.items()}
    clips, cost = [], {name: [] for name in UPSAMPLES}
    totals: dict[str, dict[str, list]] = {}
    for path in sorted(args.videos.glob("*.mp4")):
        frames = decode_frames(path, args.frames)
        h, w = frames[0].shape[:2]
        dets, clip = {}, {"clip": path.name, "size": f"{w}x{h}", "frames": len(frames)}
        for name, det in detectors.items():
            dets[name], ms = detect_all(det, frames)
            cost[name] += ms
            clip[f"detect_ms_{name}"] = round(statistics.median(ms), 2)
        ref_det = detectors["default"]
        reference = tracked(ref_det, dets["default"], 1, len(frames))
        for k in K_VALUES[1:]:
            clip[f"every_{k}"] = compare(reference, tracked(ref_det, dets["default"], k, len(frames)))
            totals.setdefault(f"every_{k}", {"ref": [], "cand": []})
            totals[f"every_{k}"]["ref"] += reference
            totals[f"every_{k}"]["cand"] += tracked(ref_det, dets["default"], k, len(frames))
        for name in ("native", "half"):
            cand = tracked(detectors[name], dets[name], 1, len(frames))
            clip[f"res_{name}"] = compare(reference, cand)
            totals.setdefault(f"res_{name}", {"ref": [], "cand": []})
            totals[f"res_{name}"]["ref"] += reference
            totals[f"res_{name}"]["cand"] += cand
        clips.append(clip)
        print(json.dumps(clip), flush=True)

    result = {
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python benchmarks/det_every.py "
        f"--frames {args.frames} --detector {args.detector}",
        "detector": detectors["default"].name,
        "machine": f"{os.cpu_count()} CPU cores (shared), torch threads 1",
        "frames_per_clip": args.frames,
        "detect_ms_median": {name: round(statistics.median(v), 2) for name, v in cost.items()},
        "overall": {key: compare(v["ref"], v["cand"]) for key, v in totals.items()},
        "clips": clips,
    }
    write_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("detect_ms_median", "overall")}, indent=2))


if __name__ == "__main__":
    main()
