#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# lint and format (ruff, pinned in the test extra; configured in pyproject.toml)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # small models: one thread per process is fastest
exec .venv/bin/python -m pytest -q "$@"
