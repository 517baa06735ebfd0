"""Docs that run: every ```python block of README.md and docs/*.md, and every ```bash block whose
commands are all ``vim-world ...``, executed in order, file by file, in one scratch directory.

- Inputs: the blocks that make what the others read (``data/steer``, ``runs/steer``) follow a
  ``<!-- docs-test: inputs -->`` line; they run once, first, for every file.
- Budgets: with ``VIM_WORLD_DOCS_BUDGET=tiny`` (the default here; ``full`` runs the docs as
  written) the replacements in :data:`TINY` shrink episodes, steps and budgets. A replacement
  that no longer matches its block fails the test, so the table cannot rot silently either.
- A block preceded by ``<!-- docs-test: skip REASON -->`` is not run (say why).
- A failure names the file, the block's line and the block's first line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BUDGET = os.environ.get("VIM_WORLD_DOCS_BUDGET", "tiny")
CLI = [sys.executable, "-m", "vim_world.cli"]

TINY_BUDGET = (
    "__import__('vim_world.agents.evaluation', fromlist=['Budget']).Budget(data_episodes=8, episode_len=10,"
    " train_steps=3, ppo_real_steps=(64,), ppo_imagined_steps=64, eval_episodes=1, candidates=8, samples=1,"
    " horizon=2, iterations=1, ppo_envs=1, ppo_imagined_envs=1)"
)
TINY: dict[str, list[tuple[str, str]]] = {
    "docs/imagination.md": [
        ("--episodes 640", "--episodes 16"), ("--steps 1500", "--steps 10"),
        ("episodes=640", "episodes=16"), ("steps=1500", "steps=10"), ('range(20)', 'range(3)'),
        ("num_envs=64", "num_envs=4"), ("np.zeros(64,", "np.zeros(4,"), ("total_timesteps=512", "total_timesteps=64"),
        ("n_steps=256, batch_size=64", "n_steps=32, batch_size=32"),
    ],
    "docs/planning.md": [
        ("episodes=8", "episodes=1"), ("num_candidates=200, iterations=3", "num_candidates=8, iterations=1"),
        ("CEM(10, 200)", "CEM(2, 8)"), ('"small"', TINY_BUDGET), ('"tiny"', TINY_BUDGET),
        ("steps=480, horizon=5", "steps=2, horizon=5"),
    ],
    "docs/data.md": [],
    "README.md": [("num_envs=256", "num_envs=4")],
}  # fmt: skip
"""File -> (text, tiny replacement) applied to every block of the file that contains the text."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str
    marker: str

    def where(self) -> str:
        first = self.code.strip().splitlines()[0] if self.code.strip() else ""
        return f"{self.path.relative_to(ROOT)}, block at line {self.line} ({first[:60]!r})"


def blocks(path: Path) -> list[Block]:
    """The fenced ```python and ```bash blocks of a Markdown file, with the docs-test marker
    (``inputs``, ``skip ...`` or empty) on the line before each."""
    text = path.read_text()
    out = []
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.M | re.S):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = re.match(r"<!-- docs-test: (.*?) -->", before.strip())
        line = text[: m.start()].count("\n") + 1
        out.append(Block(path, line, m.group(1), m.group(2), marker.group(1) if marker else ""))
    return out


def runnable(block: Block) -> bool:
    if block.marker.startswith("skip"):
        return False
    if block.lang == "python":
        return True
    if block.lang == "bash":
        lines = [ln.split("#")[0].strip() for ln in block.code.splitlines()]
        commands = [ln for ln in lines if ln]
        return bool(commands) and all(c.startswith("vim-world ") for c in commands)
    return False


def shrink(block: Block, used: set[tuple[str, str]]) -> str:
    code = block.code
    if BUDGET != "tiny":
        return code
    for old, new in TINY.get(str(block.path.relative_to(ROOT)), []):
        if old in code:
            code = code.replace(old, new)
            used.add((old, new))
    return code


def run_block(block: Block, code: str, namespace: dict) -> None:
    if block.lang == "python":
        exec(compile(code, f"{block.path.name}:{block.line}", "exec"), namespace)
        return
    for line in code.splitlines():
        command = line.split("#")[0].strip()
        if command:
            args = shlex.split(command)
            result = subprocess.run(CLI + args[1:], capture_output=True, text=True)
            if result.returncode:
                raise AssertionError(f"`{command}` exited {result.returncode}:\n{result.stderr[-2000:]}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory holding what the inputs blocks make (once for all files)."""
    work = tmp_path_factory.mktemp("docs")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        used: set[tuple[str, str]] = set()
        for path in DOCS:
            for block in blocks(path):
                if block.marker == "inputs":
                    try:
                        run_block(block, shrink(block, used), {"__name__": "__docs__"})
                    except Exception as e:
                        raise AssertionError(f"inputs block {block.where()} failed: {type(e).__name__}: {e}") from e
    finally:
        os.chdir(cwd)
    return work


def test_every_doc_has_its_blocks_classified():
    """Every python/bash block is run, or marked skip with a reason; no unknown markers."""
    for path in DOCS:
        for block in blocks(path):
            assert block.marker in ("", "inputs") or re.match(r"skip \S", block.marker), block.where()


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_doc_blocks_run(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("VIM_WORLD_DOCS_BUDGET", BUDGET)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workdir / "minari"))  # never ~/.minari
    namespace: dict = {"__name__": "__docs__"}
    used: set[tuple[str, str]] = set()
    for block in blocks(path):
        if block.marker == "inputs" or not runnable(block):
            continue
        code = shrink(block, used)
        try:
            run_block(block, code, namespace)
        except Exception as e:
            pytest.fail(f"{block.where()} failed: {type(e).__name__}: {e}")
    if BUDGET == "tiny":
        table = TINY.get(str(path.relative_to(ROOT)), [])
        inputs = {r for b in blocks(path) if b.marker == "inputs" for r in table if r[0] in b.code}
        stale = [old for old, new in table if (old, new) not in used | inputs]
        assert not stale, f"{path.relative_to(ROOT)}: tiny replacements {stale} match no block (update TINY)"
