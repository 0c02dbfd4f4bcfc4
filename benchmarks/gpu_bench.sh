#!/usr/bin/env bash
# Issue 15's one prepared GPU run: `vsr bench` in frame and face mode, JSON to $OUT.
#
# On the device machine (Python 3.12, torch with CUDA, no PyAV, no network), from the repository root,
# with the PyAV wheel carried in .whl/ (docs/GPU.md):
#     bash benchmarks/gpu_bench.sh
# Rehearsal on a CPU machine with tiny sizes (an environment that already has av):
#     OUT=/tmp/gpu-rehearsal BENCH_SIZE=64x48:8 BENCH_SRRESNET=1,8 BENCH_PRECISION=fp32 \
#         PATH=.venv/bin:$PATH bash benchmarks/gpu_bench.sh
#
# What it measures (the target setting): SRResNet 16x64 x4 with random weights (throughput
# only: outputs are temporary and deleted), fp16, 480x270 -> 1920x1080, 600 synthetic frames; every
# stage's fps, the reference loop, the roofline fraction against a matmul measured in the same run,
# GPU memory and (with pynvml) utilisation.  Each `vsr bench` call has its own time limit, so one
# failure still leaves the other's JSON, and every log is kept.
set -uo pipefail

OUT=${OUT:?set OUT to the folder for the results}
SIZE=${BENCH_SIZE:-480x270:600}
SRRESNET=${BENCH_SRRESNET:-16,64}
PRECISION=${BENCH_PRECISION:-fp16}
# Seconds per run: frame mode expects ~1.5 min plus compiling (--compile on); face mode detects with OpenCV's Haar cascades on the
# CPU (no yuface wheel for 3.12), about 0.1-1 s a frame, so it gets more; encoding alone about a minute.  All
# fit the 540 s command.
FRAME_LIMIT=${BENCH_FRAME_LIMIT:-190}
FACE_LIMIT=${BENCH_FACE_LIMIT:-170}
mkdir -p "$OUT"
started=$(date +%s)

# 1. PyAV from the carried wheel when this Python has none; the repository as the `vsr` package
#    (setup.cfg maps models/ and pipelines/ into vsr.models / vsr.pipelines: mirror that with links).
if ! python3 -c "import av" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 3
fi
pkg=$(mktemp -d)
mkdir -p "$pkg/vsr"
for entry in vsr/*; do ln -s "$PWD/$entry" "$pkg/vsr/"; done
ln -s "$PWD/models" "$pkg/vsr/models"
ln -s "$PWD/pipelines" "$pkg/vsr/pipelines"
export PYTHONPATH="/tmp/site:$pkg${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# 2. The machine, for the record.
{
    python3 -c "import sys, torch, av, cv2, numpy; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print('av', av.__version__, 'opencv', cv2.__version__, 'numpy', numpy.__version__)"
    echo "cpu cores: $(getconf _NPROCESSORS_ONLN)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
} > "$OUT/machine.txt" 2>&1

# 3. The runs: frame mode, encoding alone, then face mode (which also times frame-mode end-to-end for
#    its ratio).  Worst case 190 + 120 + 170 + 60 s.
run() {
    local name=$1 limit=$2
    shift 2
    local t0=$(date +%s)
    timeout "$limit" python3 -m vsr bench --synthetic "$SIZE" --scale 4 --random-srresnet "$SRRESNET" \
        --precision "$PRECISION" --json "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
    local rc=$?
    echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/steps.txt"
    [ $rc -eq 0 ] || rm -f "$OUT/$name.json"
    return $rc
}
run bench_frame "$FRAME_LIMIT" --mode frame --compile on --batch-sweep 4,16,32
# Encoding alone with 1, 2, 4 and 8 encoders on the same 1080p frames (what `--encoders auto` picks
# here is cores/4): throughput and the size cost of a keyframe every chunk.  800 frames = 8 chunks of
# 4 s at 24 fps, so 8 encoders all get work (the frames are held: 5 GB of RAM).
t0=$(date +%s)
timeout "${ENCODE_LIMIT:-120}" sh -c "python3 -m vsr sample /tmp/encode_clip.mp4 --size 640x360 --frames ${ENCODE_FRAMES:-800} >/dev/null &&
    python3 benchmarks/parallel_encode.py /tmp/encode_clip.mp4 --size ${ENCODE_SIZE:-1920x1080} --encoders 1,2,4,8 --repeat 1 --json" \
    > "$OUT/parallel_encode.json" 2> "$OUT/parallel_encode.log"
echo "parallel_encode rc=$? seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/steps.txt"

# If face mode ran out of time, still measure its stages (detection included) without end-to-end.
# (Uncompiled: its four pipeline runs would each compile, and detection is what it measures.)
run bench_face "$FACE_LIMIT" --mode face --compile off ||
    run bench_face_stages "${BENCH_FALLBACK_LIMIT:-60}" --mode face --no-end-to-end --frames 120 --compile off

echo "total seconds=$(( $(date +%s) - started ))" | tee -a "$OUT/steps.txt"
rm -rf "$pkg"
