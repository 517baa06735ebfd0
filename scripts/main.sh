#!/usr/bin/env bash
# Set up (if needed) and run the main job: collect rollouts, train VIM and baselines, evaluate,
# and write a self-contained HTML report. Extra arguments go to `vim-world demo`
# (e.g. --preset default on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
# The tiny preset's models are small: one intra-op thread each is fastest on a CPU and never
# oversubscribes a busy machine (measured on a loaded 2-core machine: tiny VIM trained at 48 steps/s
# with 1 thread, 1.5 steps/s with 2). Set OMP_NUM_THREADS yourself to override.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/vim-world demo "$@"
