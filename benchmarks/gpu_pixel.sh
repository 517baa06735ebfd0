#!/usr/bin/env bash
# The default 64x64 pixel preset on one CUDA GPU in <= 9 minutes: data, speed, training, evaluation.
# Writes $OUT/gpu_pixel.md (and .json). Run from anywhere:  OUT=/some/dir bash benchmarks/gpu_pixel.sh
# CPU rehearsal at tiny sizes:  GPU_PIXEL_TINY=1 OUT=/tmp/gp bash benchmarks/gpu_pixel.sh
# Uses the current Python; when it cannot import this checkout's package (the GPU image has torch but
# not vim_world, gymnasium or pygame-ce), installs the checkout and any wheels in $GPU_PIXEL_WHEELS
# (default .whl: carry gymnasium, pygame-ce and farama-notifications there, see docs/model.md) into a
# target folder put on PYTHONPATH (no dependencies, no network, no build isolation), so the GPU torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_pixel_out}
PY=${PYTHON:-python3}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # the import check runs from /tmp
SITE=${GPU_PIXEL_SITE:-/tmp/vim_world_gpu_site}
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1 PYTHONUNBUFFERED=1
CHECK='import torch, numpy, scipy, sklearn, gymnasium, pygame, vim_world.train, vim_world.data'
WHEELS=${GPU_PIXEL_WHEELS:-.whl}
if ! (cd /tmp && "$PY" -c "$CHECK" 2>/dev/null); then
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-deps --no-index --no-compile --upgrade --target "$SITE" "$WHEELS"/*.whl
  fi
  "$PY" -m pip install -q --no-deps --no-build-isolation --no-index --upgrade --target "$SITE" .
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! (cd /tmp && "$PY" -c "$CHECK"); then
  echo "gpu_pixel.sh: $PY cannot import what the run needs ($CHECK); carry the missing packages as wheels" \
    "in $WHEELS (gymnasium==1.4.0, pygame-ce==2.5.8, farama-notifications; docs/model.md, 'On a GPU')" >&2
  exit 1
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda:", torch.cuda.is_available())'
exec timeout "${GPU_PIXEL_TIMEOUT_S:-540}" "$PY" benchmarks/gpu_pixel.py --out "$OUT" --work "${GPU_PIXEL_WORK:-/tmp/gpu_pixel_work}"
