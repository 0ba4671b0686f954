#!/usr/bin/env bash
# The scaling study's GPU sizes (96 px / ngf 32 and 128 px / ngf 64) on one GPU, in one go: for each size the fixed
# targets from the reference protocol (targets-gpu-SIZE), then the tuned methods (scaling-SIZE), 4 runs at a time
# on the one GPU. Everything lands in $STORE; a tarball of what the reports need (results.sqlite with every record,
# run folders without weights, the targets files, base-model metadata) is written to $DEST.
#
#   STORE=/tmp/scale DEST=scale.tgz bash scripts/scaling_gpu.sh
#
# Prompt embeddings: on a machine without the MiniLM weights, set E2GAN_BENCH_TEXT_ENCODER_CACHED to the encoder's
# identity (`e2gan-bench doctor` prints it) and put the embeddings computed where the weights are in
# $STORE/cache/text (scripts/encode_prompts.py): the same encoder, the same cache keys.
set -uo pipefail
STORE=${STORE:-/tmp/scale}
DEST=${DEST:-scale.tgz}
JOBS=${JOBS:-4}
SIZES=${SIZES:-"128 96"}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$STORE/cache"
bench() { python3 -m e2gan_bench "$@"; }
for res in $SIZES; do
  echo "== $(date -u +%T) targets at ${res} px"
  bench targets make --suite "targets-gpu-${res}" --dest "targets/gpu-${res}.yaml" --out "$STORE" \
    --executor process --jobs "$JOBS" | tail -n 25 || echo "targets at ${res} px: exit $?"
  echo "== $(date -u +%T) methods at ${res} px"
  # the run keeps the suite's relative target (time to target never changes training); the report reads the
  # fixed targets file made above (scripts/scaling_report.py)
  bench run --suite "scaling-${res}" --out "$STORE" --executor process --jobs "$JOBS" | tail -n 30 \
    || echo "scaling at ${res} px: exit $?"
  # what the reports need, after each size (a later size cut short by a time limit loses nothing already done)
  echo "== $(date -u +%T) packing"
  tar czf "$DEST" --exclude='*.safetensors' --exclude='*.npz' --exclude='*.pt' \
    -C "$STORE" results.sqlite runs reports $(cd "$STORE" && ls -d cache/base/*/meta.json 2>/dev/null) \
    -C "$PWD" $(ls targets/gpu-*.yaml 2>/dev/null) suites/scaling-*.yaml
  ls -la "$DEST"
done
