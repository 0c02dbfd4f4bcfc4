#!/usr/bin/env bash
# The GPU run of issue 14: train, export and measure the full-size models in one command, inside $BUDGET seconds.
# From the repository root on the GPU machine, after models/recipes/gpu_prepare.sh built gpucarry/ and .whl/ here:
#   bash models/recipes/train_gpu.sh            # OUT=... set by the device tool; BUDGET=540 by default
# Rehearsal on the CPU (tiny models, 60 s, the carry from REHEARSE=1 gpu_prepare.sh):
#   REHEARSE=1 CARRY=/tmp/rehearse/gpucarry OUT=/tmp/rehearse/out PYTHON=.venv/bin/python bash models/recipes/train_gpu.sh
#
# Order (each phase's --time-limit is a share of the time left, so the cosine schedules end inside it):
#   1. general-x4-psnr + face-x4-psnr                              (side by side; 45 % of what is left)
#   2. general-x4 + face-x4 (GAN, from 1) + general-x2-psnr + face-x2-psnr      (50 % of what is left)
#   3. general-x2 + face-x2 (GAN, from 2)         while the x4 models are exported and measured (45 %)
#   4. export and measure the x2 models; pack $OUT
# $OUT gets 5 files (the device tool returns at most 8): weights_x4.tar and weights_x2.tar (fp16 safetensors,
# about 3 MB a model), results.json (every model's numbers, training facts, the machine), runs.tar.gz
# (each run's config.toml, metrics.csv, log, sample grids, eval grids) and log.txt.  Checkpoints stay there
# (25 MB each with Adam state: over the 16 MiB a file); a later run can start from the weights (--init).
set -u
T0=$(date +%s)
: "${OUT:?set OUT to the output folder}"
CARRY=${CARRY:-gpucarry}
REHEARSE=${REHEARSE:-0}
PY=${PYTHON:-python3}
R=${RUNS:-/tmp/vsr-runs}
W=$R/weights
rm -rf "$R" && mkdir -p "$R" "$W" "$R/grids" "$OUT"
if [ "$REHEARSE" = 1 ]; then
  BUDGET=${BUDGET:-60}
  NET=(--blocks 2 --channels 8 --batch-size 4 --device cpu --set data.pool_size=8 --set data.workers=0
       --set data.val_samples=4 --set val_every=0 --log-every 5)
  X4=(--hr-size 32) X2=(--hr-size 32) LIMIT_FACES=4
  export OMP_NUM_THREADS=1
else
  BUDGET=${BUDGET:-540}
  NET=()
  X4=() X2=(--hr-size 96 --batch-size 32) LIMIT_FACES=200
fi
log() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/log.txt" >&2; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }

# ---- 0. environment: PyAV from the carried wheel; the package from this tree (no install needed) ----
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import av" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || log "PyAV did not install"
fi
SRC=/tmp/vsr-src
rm -rf "$SRC" && mkdir -p "$SRC/vsr"
for f in vsr/*; do ln -s "$PWD/$f" "$SRC/vsr/"; done
ln -s "$PWD/models" "$SRC/vsr/models" && ln -s "$PWD/pipelines" "$SRC/vsr/pipelines"
export PYTHONPATH=/tmp/site:$SRC PYTHONUNBUFFERED=1
"$PY" -c "import av; print('PyAV', av.__version__)" 2>&1 | tee -a "$OUT/log.txt"  # torch's versions: results.json
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> "$OUT/log.txt"
GENERAL=(--data "patches:$CARRY/patches/general")
FACE=(--data "patches:$CARRY/patches/faces" --val "images:$CARRY/val/faces")
C=models/recipes

run() {  # NAME LIMIT_SECONDS ARGS...: one training run, its log beside it
  local name=$1 limit=$2; shift 2
  if [ "$limit" -lt 5 ]; then log "skip $name: ${limit} s left for it"; return; fi
  log "start $name (--time-limit $limit): vsr train $*"
  "$PY" -m vsr train "$@" --time-limit "$limit" --out "$R/$name" > "$R/$name.log" 2>&1
  log "done $name rc=$? ($(tail -n 1 "$R/$name.log"))"
}
measure() {  # NAME...: export and evaluate into results.json
  log "measure $*"
  "$PY" benchmarks/gpu_results.py --runs "$R" --val "$CARRY/val" --weights "$W" --json "$OUT/results.json" \
    --limit-faces "$LIMIT_FACES" --grids "$R/grids" "$@" >> "$R/measure.log" 2>&1 || log "measure failed: see measure.log"
}

# ---- 1. the x4 PSNR models ----
L=$(( $(left) * 45 / 100 ))
run general-x4-psnr $L --config $C/gpu_psnr.toml "${GENERAL[@]}" --scale 4 "${X4[@]}" "${NET[@]}" &
run face-x4-psnr $L --config $C/gpu_psnr.toml "${FACE[@]}" --scale 4 "${X4[@]}" "${NET[@]}" &
wait
if [ ! -f "$R/general-x4-psnr/last.ckpt" ] && [ ! -f "$R/face-x4-psnr/last.ckpt" ]; then
  log "both x4 PSNR runs failed: stopping (see the logs in runs.tar.gz)"
  tar -czf "$OUT/runs.tar.gz" -C "$R" --exclude='*.ckpt' . ; exit 3
fi

# ---- 2. x4 GAN stages, x2 PSNR models ----
L=$(( $(left) * 50 / 100 ))
run general-x4 $L --config $C/gpu_gan.toml "${GENERAL[@]}" --scale 4 --init "$R/general-x4-psnr/last.ckpt" "${X4[@]}" "${NET[@]}" &
run face-x4 $L --config $C/gpu_gan.toml "${FACE[@]}" --scale 4 --init "$R/face-x4-psnr/last.ckpt" "${X4[@]}" "${NET[@]}" &
run general-x2-psnr $L --config $C/gpu_psnr.toml "${GENERAL[@]}" --scale 2 "${X2[@]}" "${NET[@]}" &
run face-x2-psnr $L --config $C/gpu_psnr.toml "${FACE[@]}" --scale 2 "${X2[@]}" "${NET[@]}" &
wait

# ---- 3. x2 GAN stages while the x4 models are measured ----
L=$(( $(left) * 45 / 100 ))
run general-x2 $L --config $C/gpu_gan.toml "${GENERAL[@]}" --scale 2 --init "$R/general-x2-psnr/last.ckpt" "${X2[@]}" "${NET[@]}" &
run face-x2 $L --config $C/gpu_gan.toml "${FACE[@]}" --scale 2 --init "$R/face-x2-psnr/last.ckpt" "${X2[@]}" "${NET[@]}" &
measure general-x4-psnr face-x4-psnr general-x4 face-x4
wait

# ---- 4. the x2 models; pack ----
measure general-x2-psnr face-x2-psnr general-x2 face-x2
tar -cf "$OUT/weights_x4.tar" -C "$W" $(cd "$W" && ls -- *x4*.safetensors 2>/dev/null)
tar -cf "$OUT/weights_x2.tar" -C "$W" $(cd "$W" && ls -- *x2*.safetensors 2>/dev/null)
tar -czf "$OUT/runs.tar.gz" -C "$R" --exclude='*.ckpt' --exclude=weights .
log "finished in $(( $(date +%s) - T0 )) s of $BUDGET"
ls -l "$OUT" >> "$OUT/log.txt"
