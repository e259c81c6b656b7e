#!/usr/bin/env bash
# The `paper` presets of both trained families on a CUDA GPU, one after the other, each with its
# wall time: the isotropic mixture (d, K, N) = (30, 4, 100) and the coloured digits templates
# (K = 6, 15x15, N = 100; 100,000 steps). Results go to OUT_DIR: a store, a figure and a log per
# run, times.txt and gpu.txt. A run resumes from its store's checkpoint when started again.
#
#   bash benchmarks/paper_presets_gpu.sh [OUT_DIR]      (default: runs/paper-gpu)
set -euo pipefail
out=${1:-runs/paper-gpu}
mkdir -p "$out"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt"
fi
run() {
    local name=$1
    shift
    local start
    start=$(date +%s)
    memcross validate "$@" --preset paper --device cuda --store "$out/$name.sqlite" \
        --figure "$out/$name.png" > "$out/$name.log" 2>&1
    echo "$name $(($(date +%s) - start)) s" | tee -a "$out/times.txt"
}
run isotropic-30-4-100 --dim 30 --components 4 --train 100
run colored-digits --data colored-templates --templates digits
