#!/usr/bin/env bash
# Create .venv inside the checkout and install vim-world with the CPU build of torch.
# torch is installed *first* and pinned, so that nothing later resolves a multi-GB CUDA build.
# Users with a GPU: create the venv yourself with your CUDA torch (>= 2.8), then `pip install -e .`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q "torch==2.13.0"
fi
if ! .venv/bin/python -c "import vim_world, pytest, hypothesis" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.vim_world_installed ]; then
  .venv/bin/pip install -q -e ".[test]"
  touch .venv/.vim_world_installed
fi
