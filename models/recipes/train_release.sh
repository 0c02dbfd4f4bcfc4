#!/usr/bin/env bash
# Retrains the shipped models exactly as they were trained (CPU recipe, see the model cards), then
# exports and measures them.  Run from the repository root with ../shared/data beside it:
#   bash models/recipes/train_release.sh            # runs/ holds checkpoints; log in runs/train_all.log
# On a GPU, raise --blocks/--channels/--steps/--hr-size: these short schedules fit 2 CPU cores.
set -u
R=${RUNS:-runs}
mkdir -p "$R"
D=../shared/data
C=models/recipes
COMMON="--blocks 6 --channels 32 --batch-size 16"
FACE="--data images:$D/faces/train --val images:$D/faces/val"
GENERAL="--data images:$D/scenes --data images:$D/urban --data videos:$D/videos --data images:$D/faces/train"
run() {
  name=$1; shift
  echo "=== $name $(date +%T): vsr train $*"
  vsr train "$@" --out "$R/$name" 2>&1 | grep --line-buffered -E "val PSNR|step [0-9]+:|error"
  echo "=== $name done $(date +%T)"
}
{
run face-x4-psnr-a --config $C/degrade_face.toml $COMMON $FACE --scale 4 --stage psnr --steps 1200 --hr-size 64
run face-x4-psnr --config $C/degrade_mild.toml $COMMON $FACE --scale 4 --stage psnr --init "$R/face-x4-psnr-a/last.ckpt" --steps 2000 --hr-size 64
run general-x4-psnr --config $C/degrade_mild.toml $COMMON $GENERAL --scale 4 --stage psnr --steps 1500 --hr-size 96
run face-x2-psnr --config $C/degrade_mild.toml $COMMON $FACE --scale 2 --stage psnr --steps 1000 --hr-size 64
run general-x2-psnr --config $C/degrade_mild.toml $COMMON $GENERAL --scale 2 --stage psnr --steps 1000 --hr-size 64
# GAN stage: not shipped from the CPU session.  face-x4 after 300 steps measured 34.67 dB RGB on faces/val
# with gan_gentle.toml (34.13 with degrade_mild.toml's default loss weights), below bicubic (35.25) and
# 3.2 dB below face-x4-psnr, outside the 2.5 dB the release asks for; general-x4 ran at ~0.1 step/s.
# On a GPU, with a longer schedule:
#   run face-x4 --config $C/gan_gentle.toml $COMMON $FACE --scale 4 --stage gan --init "$R/face-x4-psnr/last.ckpt" --steps 300 --hr-size 64
#   run general-x4 --config $C/gan_gentle.toml $COMMON $GENERAL --scale 4 --stage gan --init "$R/general-x4-psnr/last.ckpt" --steps 300 --hr-size 96
#   run face-x2 --config $C/gan_gentle.toml $COMMON $FACE --scale 2 --stage gan --init "$R/face-x2-psnr/last.ckpt" --steps 300 --hr-size 64
#   run general-x2 --config $C/gan_gentle.toml $COMMON $GENERAL --scale 2 --stage gan --init "$R/general-x2-psnr/last.ckpt" --steps 300 --hr-size 64
} | tee -a "$R/train_all.log"
python benchmarks/release_models.py --runs "$R" --log "$R/train_all.log" \
  face-x4-psnr general-x4-psnr face-x2-psnr general-x2-psnr
