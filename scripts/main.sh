#!/usr/bin/env bash
# Set up (if needed) and run the main job: collect rollouts, train VIM and baselines, evaluate,
# and write a self-contained HTML report. Extra arguments go to `vim-world demo`
# (e.g. --preset default on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
exec .venv/bin/vim-world demo "$@"
