#!/usr/bin/env bash
# Builds what the GPU run (train_gpu.sh) carries, here on the development machine, from the repository root:
#   gpucarry/patches/general   pre-cut 192 px JPEG tiles: scenes, frames of the videos, urban, faces/train
#   gpucarry/patches/faces     faces/train chips (copied as they are, 200 px) and faces detected in the videos
#   gpucarry/val/{Set5,Set14,faces}   validation only: sr-bench Set5/Set14, the first $FACES_VAL faces/val images
#   .whl/av-*.whl              PyAV for Python 3.12 (the GPU machine has none and no internet)
# and checks that everything that travels (tracked + untracked-not-ignored files, gpucarry, .whl) fits in 64 MiB,
# counting ${FILE_OVERHEAD} bytes a file on top of the bytes; the patch sets get whatever is left under $TARGET_MIB.
# Both folders are git-ignored (.gitignore).  faces/val and sr-bench are never cut into training patches.
#   bash models/recipes/gpu_prepare.sh                          # the real carry (a few minutes on 2 cores)
#   REHEARSE=1 CARRY=/tmp/rehearse/gpucarry bash models/recipes/gpu_prepare.sh   # tiny sets for the CPU rehearsal
set -eu
D=${DATA:-../shared/data}
CARRY=${CARRY:-gpucarry}
PY=${PY:-.venv/bin/python}
REHEARSE=${REHEARSE:-0}
FACES_VAL=${FACES_VAL:-200}
TARGET_MIB=${TARGET_MIB:-62}    # of the 64 MiB limit; the rest is headroom
FILE_OVERHEAD=${FILE_OVERHEAD:-512}
GENERAL_SHARE=${GENERAL_SHARE:-55}  # percent of the patch budget for the general set
vsr() { OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" -m vsr "$@"; }

rm -rf "$CARRY"
mkdir -p "$CARRY/val/faces" "$CARRY/patches"

# 1. PyAV for 3.12 (CARRY_AV=0 leaves it out: no H.264 in the pool, no real-footage face protocol there)
if [ "${CARRY_AV:-1}" = 1 ] && ! ls .whl/av-*-cp312-*.whl >/dev/null 2>&1; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d .whl av
fi
[ "${CARRY_AV:-1}" = 1 ] || rm -rf .whl

# 2. validation sets (never training data)
if [ "$REHEARSE" = 1 ]; then
  FACES_VAL=4
  cp -r "$D/sr-bench/Set5" "$CARRY/val/"
else
  cp -r "$D/sr-bench/Set5" "$D/sr-bench/Set14" "$CARRY/val/"
fi
ls "$D/faces/val" | sort | head -n "$FACES_VAL" | while read -r f; do cp "$D/faces/val/$f" "$CARRY/val/faces/"; done

# 3. what is left for the patch sets
size_of() {  # bytes + FILE_OVERHEAD a file, of the files named on stdin (NUL-separated)
  "$PY" -c "import os,sys; n=[p for p in sys.stdin.read().split('\0') if p and os.path.isfile(p)]; print(sum(os.path.getsize(p) for p in n) + $FILE_OVERHEAD*len(n))"
}
code=$(git ls-files -z -co --exclude-standard | size_of)
carried=$(find "$CARRY" .whl -type f -print0 2>/dev/null | size_of)
left=$(( TARGET_MIB * 1048576 - code - carried ))
if [ "$REHEARSE" = 1 ]; then
  GEN_MB=0.4; FACE_MB=0.25
  SMALL=$(dirname "$CARRY")/faces_small; rm -rf "$SMALL"; mkdir -p "$SMALL"
  ls "$D/faces/train" | sort | head -n 60 | while read -r f; do ln -s "$(realpath "$D/faces/train/$f")" "$SMALL/$f"; done
  FACES_TRAIN=$SMALL; VIDEOS=$D/videos/stage_hamilton.mp4; URBAN=""; PER_VIDEO=2
else
  # the JPEG bytes, less FILE_OVERHEAD for each of the ~15 KB (general) / ~8 KB (faces) files they make
  GEN_MB=$("$PY" -c "print(round($left * $GENERAL_SHARE / 100 / 1048576 * 15000 / (15000 + $FILE_OVERHEAD), 2))")
  FACE_MB=$("$PY" -c "print(round($left * (100 - $GENERAL_SHARE) / 100 / 1048576 * 8000 / (8000 + $FILE_OVERHEAD), 2))")
  FACES_TRAIN=$D/faces/train; VIDEOS=$D/videos; URBAN="--data images:$D/urban"; PER_VIDEO=20
fi
echo "code $code B, validation + wheel $carried B: patch sets get ${GEN_MB} + ${FACE_MB} MiB" >&2

# 4. the patch sets (small sources first: what they cannot fill goes to the next)
vsr train prep --data "images:$D/scenes" --data "videos:$VIDEOS" $URBAN --data "images:$FACES_TRAIN" \
  --size 192 --frames-per-video "$PER_VIDEO" --budget-mb "$GEN_MB" --out "$CARRY/patches/general" --json \
  > "$CARRY/patches/general.json"
vsr train prep --data "videos:$VIDEOS" --video-faces --data "images:$FACES_TRAIN" \
  --size 200 --frames-per-video "$PER_VIDEO" --budget-mb "$FACE_MB" --out "$CARRY/patches/faces" --json \
  > "$CARRY/patches/faces.json" \
  || vsr train prep --data "images:$FACES_TRAIN" --size 200 --budget-mb "$FACE_MB" \
    --out "$CARRY/patches/faces" --overwrite --json > "$CARRY/patches/faces.json"  # no face detector here
[ "$REHEARSE" = 1 ] && rm -rf "$SMALL"

# 5. the check: everything that travels
"$PY" - "$CARRY" "$FILE_OVERHEAD" <<'EOF'
import json, os, subprocess, sys
carry, overhead = sys.argv[1], int(sys.argv[2])
def files(paths):
    return [os.path.join(r, f) for p in paths for r, _, fs in os.walk(p) for f in fs]
code = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True, text=True, check=True)
parts = {"code (tracked + untracked, not ignored)": [p for p in code.stdout.split("\0") if p and os.path.isfile(p)]}
parts[carry] = files([carry])
parts[".whl"] = files([".whl"])
rows = {k: {"files": len(v), "bytes": sum(os.path.getsize(p) for p in v)} for k, v in parts.items()}
total = sum(r["bytes"] + overhead * r["files"] for r in rows.values())
for name in ("patches/general", "patches/faces", "val"):  # the carry's parts, for the record
    fs = files([os.path.join(carry, name)])
    rows[f"  {carry}/{name}"] = {"files": len(fs), "bytes": sum(os.path.getsize(p) for p in fs)}
for k, r in rows.items():
    print(f"{k:45s} {r['files']:6d} files {r['bytes'] / 2**20:8.2f} MiB", file=sys.stderr)
limit = 64 * 2**20
n = sum(len(v) for v in parts.values())
print(f"{'total, with ' + str(overhead) + ' B a file':45s} {n:6d} files {total / 2**20:8.2f} MiB of 64", file=sys.stderr)
json.dump({"parts": rows, "total_bytes": total, "file_overhead": overhead, "limit_bytes": limit}, open(os.path.join(carry, "carry.json"), "w"), indent=1)
sys.exit(0 if total < limit else "the carry is over 64 MiB: lower TARGET_MIB or FACES_VAL")
EOF
