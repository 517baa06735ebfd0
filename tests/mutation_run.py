"""Mutation testing of one module with mutmut's mutation operators, against the tests that cover it.

Usage (from the repository root, with mutmut 2.5.1 in the venv)::

    python tests/mutation_run.py envs/mechanisms.py --sample 60 -- tests/test_mechanism_constants.py

Every mutant mutmut would make of the module is listed (``mutmut.list_mutations``); ``--sample N``
keeps N of them drawn with ``random.Random(--seed)`` (all of them without it). For each mutant the
file is rewritten, the given pytest arguments run with ``-x`` in a process forked from one that
has already imported the heavy libraries (torch, gymnasium, ...; never ``vim_world``), and the
original file is restored, whatever happens. A mutant is *killed* when pytest fails or runs past
``--timeout``, *survived* when it passes. Survivors are printed with their mutated line.

Not collected by pytest (the name does not start with ``test_``); not part of the package.
"""

from __future__ import annotations

import argparse
import difflib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "numpy", "scipy.optimize", "sklearn.metrics", "gymnasium", "pygame", "hypothesis", "pytest")


def mutants(path: Path) -> list[tuple[object, str]]:
    """Every (mutation id, mutated source) mutmut makes of ``path``."""
    import mutmut

    source = path.read_text()
    ids = mutmut.list_mutations(mutmut.Context(source=source, filename=str(path)))
    out = []
    for mid in ids:
        mutated, count = mutmut.mutate(mutmut.Context(source=source, mutation_id=mid, filename=str(path)))
        if count == 1 and mutated != source:
            out.append((mid, mutated))
    return out


def run_tests(pytest_args: list[str], timeout: float) -> tuple[str, float]:
    """Run pytest in a forked child on the current files: ('passed' | 'failed' | 'timeout', seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: fresh bytecode, quiet output
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.pycache_prefix = tempfile.mkdtemp(prefix="mut-pyc-")
        sys.dont_write_bytecode = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import pytest

        code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *pytest_args])
        os._exit(int(code))
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                return ("passed" if code == 0 else "failed"), time.monotonic() - start
            if time.monotonic() - start > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "timeout", time.monotonic() - start
            time.sleep(0.05)
    except BaseException:  # interrupted: take the child down with us
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def changed_line(original: str, mutated: str) -> str:
    """The mutated line(s), as ``LINE: text``."""
    out = []
    for group in difflib.SequenceMatcher(None, original.splitlines(), mutated.splitlines()).get_opcodes():
        tag, _, _, j1, j2 = group
        if tag != "equal":
            out += [f"{j + 1}: {line.strip()}" for j, line in enumerate(mutated.splitlines()[j1:j2], start=j1)]
    return " | ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", type=Path, help="the file to mutate")
    parser.add_argument("--sample", type=int, default=None, help="run N mutants drawn at random (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per mutant (default: 5 x baseline + 10)")
    parser.add_argument("pytest_args", nargs="+", help="after --: the covering tests (pytest arguments)")
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be >= 1, got {args.sample}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` restores the file
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    for name in HEAVY:
        __import__(name)
    assert not any(m == "vim_world" or m.startswith("vim_world.") for m in sys.modules), "parent imported vim_world"

    path = args.module
    original = path.read_text()
    every = mutants(path)
    chosen = (
        sorted(random.Random(args.seed).sample(range(len(every)), args.sample))
        if args.sample and args.sample < len(every)
        else list(range(len(every)))
    )
    status, base = run_tests(args.pytest_args, timeout=3600)
    if status != "passed":
        print(f"baseline: the covering tests do not pass on the unmutated code ({status})")
        return 1
    timeout = args.timeout or 5 * base + 10
    print(
        f"{path}: {len(every)} mutants, running {len(chosen)} (seed {args.seed}); baseline {base:.1f} s, timeout {timeout:.0f} s"
    )
    counts = {"failed": 0, "timeout": 0, "passed": 0}
    try:
        for n, i in enumerate(chosen):
            mid, mutated = every[i]
            path.write_text(mutated)
            result, seconds = run_tests(args.pytest_args, timeout)
            path.write_text(original)
            counts[result] += 1
            if result == "passed":
                print(f"  SURVIVED #{i} (line {mid.line_number + 1}): {changed_line(original, mutated)}", flush=True)
            print(f"  [{n + 1}/{len(chosen)}] #{i} {result} in {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        path.write_text(original)
    ran = sum(counts.values())
    print(
        f"{path}: killed {counts['failed']} + timeout {counts['timeout']}, survived {counts['passed']} of {ran} "
        f"({100 * counts['passed'] / max(ran, 1):.1f}% survived)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
