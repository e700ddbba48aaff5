#!/usr/bin/env bash
# `make bench-cuda`: the speed benchmarks on a CUDA GPU, for a machine that has one (the
# project never needs one). Each step is bounded by its own time limit (seconds, after
# the step's name) and a failed step does not stop the next; the exit status says
# whether all passed. Steps, most telling first:
#   encoder      one member's forward+backward on a 300-frame clip (GFLOP/s, % of the
#                GPU's float32 matmul peak), as encoder_bench does on a CPU
#   speed        bauer2025's shared-frames path against every window on its own
#                (20 iterations x 3), with the largest pixel difference between them
#   fast         the `fast` preset on the 5 test clips, 3 times (medians of each)
#   dwiseneuro   DwiseNeuro's passes (full size, random weights) and its estimated time
#                per clip with the reference's 7 members
#   bauer2025    the full bauer2025 protocol on the same 5 clips (runs.jsonl, resumable)
# Environment: PYTHON (default .venv/bin/python), BENCH_OUT (default bench_out/cuda),
# MASK (default bench_out/mask.safetensors: `make bench_out/mask.safetensors`), DEVICE
# (default cuda), THREADS (torch CPU threads, default 2: the in-silico trials are simulated
# on the CPU), BENCH_SECONDS (when set, the last step stops so that the whole script
# ends within that many seconds; its finished clips stay in its runs.jsonl), STEPS (when
# set, only those steps, e.g. STEPS="encoder dwiseneuro").
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${BENCH_OUT:-bench_out/cuda}"
MASK="${MASK:-bench_out/mask.safetensors}"
DEVICE="${DEVICE:-cuda}"
THREADS="${THREADS:-2}"
MEMBER=napari_movierecon/sample_data/encoder/member_0.safetensors
mkdir -p "$OUT"
failed=""

step() {  # step NAME SECONDS COMMAND...: the command's output to OUT/NAME.txt and here
    local name=$1 limit=$2
    shift 2
    case " ${STEPS:-${name%_*}} " in *" ${name%_*} "*) ;; *) return ;; esac
    echo "== $name (limit ${limit} s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    local status=${PIPESTATUS[0]}
    [ "$status" = 0 ] || { echo "== $name failed (exit $status)"; failed="$failed $name"; }
}

"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
on=(--device "$DEVICE" --threads "$THREADS")
step encoder 150 "$PYTHON" -m benchmarks.encoder_bench "${on[@]}" --encoder "$MEMBER"
step speed 150 "$PYTHON" -m benchmarks.bauer2025_speed_bench "${on[@]}" --iterations 20 \
    --repeats 3 --mask "$MASK"
for run in 1 2 3; do
    step "fast_$run" 150 "$PYTHON" -m benchmarks.reconstruct_bench "${on[@]}" --presets fast \
        --encoders ensemble --clips 5 --mask "$MASK" --out "$OUT/fast_$run"
done
step dwiseneuro 240 "$PYTHON" -m benchmarks.dwiseneuro_bench "${on[@]}"
last_limit=900
if [ -n "${BENCH_SECONDS:-}" ]; then
    last_limit=$((BENCH_SECONDS - SECONDS))
    [ "$last_limit" -ge 10 ] || last_limit=10
fi
step bauer2025 "$last_limit" "$PYTHON" -m benchmarks.reconstruct_bench "${on[@]}" \
    --presets bauer2025 --encoders ensemble --clips 5 --mask "$MASK" --out "$OUT/bauer2025" \
    --resume

if [ -n "$failed" ]; then
    echo "bench-cuda: failed steps:$failed"
    exit 1
fi
