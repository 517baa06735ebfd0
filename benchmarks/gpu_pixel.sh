#!/usr/bin/env bash
# The default 64x64 pixel preset on one CUDA GPU in <= 8 minutes: data, speed, training, evaluation.
# Writes $OUT/gpu_pixel.md (and .json). Run from anywhere:  OUT=/some/dir bash benchmarks/gpu_pixel.sh
# GPU_PIXEL_BUDGET_S="vim=220,vrnn=40" trains a model longer than the equal default budget.
# CPU rehearsal at tiny sizes:  GPU_PIXEL_TINY=1 OUT=/tmp/gp bash benchmarks/gpu_pixel.sh
# Uses the current Python when it can import everything (torch with CUDA, numpy, scipy, scikit-learn,
# gymnasium, pygame-ce, vim_world); else makes a venv over the system packages and installs this
# checkout into it (`pip install -e . --no-deps` first: no network needed, the GPU torch is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_pixel_out}
PY=${PYTHON:-python3}
VENV=${GPU_PIXEL_VENV:-/tmp/vim_world_gpu_venv}
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1
CHECK='import torch, numpy, scipy, sklearn, gymnasium, pygame, vim_world.train, vim_world.data'
if ! "$PY" -c "$CHECK" 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
  PY=$VENV/bin/python
  if ! "$PY" -c "$CHECK" 2>/dev/null; then
    "$PY" -m pip install -q -e . --no-deps
    "$PY" -c "$CHECK" 2>/dev/null || "$PY" -m pip install -q -e .
  fi
fi
"$PY" -c "$CHECK"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda:", torch.cuda.is_available())'
exec timeout 470 "$PY" benchmarks/gpu_pixel.py --out "$OUT" --work "${GPU_PIXEL_WORK:-/tmp/gpu_pixel_work}"
