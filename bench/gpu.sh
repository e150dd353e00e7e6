#!/usr/bin/env bash
# GPU numbers in one prepared run: under 10 minutes on one NVIDIA H100 (bench/README.md#gpu).
#
#   bench/gpu.sh [OUT_DIR]        # default: $OUT when set (the device tool's folder), else bench/results
#
# Runs bench/gpu.py: runner against a hand-written loop and Lightning (MLP, batch 64; ResNet-18
# on 64x64 images, batch 256, bf16), runner-ddp on NCCL with 1 process, runner-fsdp (FSDP2)
# on one GPU, torch.compile on and off, and the step blocked by an asynchronous checkpoint.
# Writes OUT_DIR/gpu-results.md (the table), gpu-results.json and gpu-log.txt.
#
# Python: $PYTHON, else .venv/bin/python when it imports torch (with CUDA) and runner, else a
# virtualenv .venv-gpu on top of the machine's own torch (--system-site-packages) with this
# checkout's distributions installed editable, without dependencies (no network needed when
# hatchling is already there). Lightning is installed when missing (pinned by
# constraints.txt, so torch stays); without network its column is skipped with a note.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-bench/results}}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu-log.txt"
: >"$LOG"
say() { echo "gpu.sh: $*" | tee -a "$LOG"; }

usable() { "$1" -c "import torch, runner, runner_ddp, runner_fsdp, runner_checkpoint; assert torch.cuda.is_available()" 2>>"$LOG"; }

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]] && usable .venv/bin/python; then
    PY=.venv/bin/python
  else
    SYSTEM=$(command -v python3 || command -v python)
    say "preparing .venv-gpu on $SYSTEM's torch"
    [[ -x .venv-gpu/bin/python ]] || "$SYSTEM" -m venv --system-site-packages .venv-gpu
    PACKAGES=(-e core)
    for plugin in plugins/runner-*/; do PACKAGES+=(-e "$plugin"); done
    .venv-gpu/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
      "${PACKAGES[@]}" >>"$LOG" 2>&1 \
      || timeout 120 .venv-gpu/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        "${PACKAGES[@]}" >>"$LOG" 2>&1
    PY=.venv-gpu/bin/python
  fi
fi
if ! usable "$PY"; then
  say "$PY cannot import torch with CUDA and runner's distributions; set PYTHON to an interpreter that does (see $LOG)"
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" | tee -a "$LOG"

if ! "$PY" -c "import lightning" 2>/dev/null; then
  say "installing lightning (its column is skipped if this fails)"
  timeout 90 "$PY" -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 10 \
    -c constraints.txt "lightning>=2.4" >>"$LOG" 2>&1 || say "lightning could not be installed"
fi

# 480 s of sections at most (a section is not started past it), the whole run killed at 570 s.
timeout 570 "$PY" -u bench/gpu.py --out "$OUT_DIR" --budget-s 480 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
say "exit status $status; the table is $OUT_DIR/gpu-results.md"
exit "$status"
