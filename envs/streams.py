"""Per-world random streams, drawn in blocks.

World ``i`` of a batch owns generator ``i``: batched dynamics then draw exactly what N separate
single-world envs would draw, so the native vector env and N single envs agree step for step by
construction. Each generator fills a block of ``block`` steps at a time, which keeps the per-step
hot path free of Python loops over worlds.
"""

from __future__ import annotations

import numpy as np

from .mechanisms import Noise


class BlockStreams:
    """Per-step noise ``(N, K, 2)`` for N worlds from N generators.

    Args:
        generators: one ``np.random.Generator`` per world (shared with the env's ``np_random``).
        num_objects: K.
        block: steps drawn per refill.
    """

    def __init__(self, generators: list[np.random.Generator], num_objects: int, block: int = 32):
        self.generators = generators
        self.block = block
        n = len(generators)
        self._normal = np.empty((n, block, num_objects, 2))
        self._uniform = np.empty((n, block, num_objects, 2))
        self._cursor = np.full(n, block)
        self._rows = np.arange(n)

    def restart(self, worlds: np.ndarray) -> None:
        """Drop the buffered draws of ``worlds`` (after their generators were reseeded or used
        for a reset), so their next draw starts a fresh block."""
        self._cursor[worlds] = self.block

    def draw(self, worlds: np.ndarray) -> Noise:
        """Advance the streams of ``worlds`` (bool ``(N,)``) by one step; noise for the others
        is returned but not consumed. Returns ``Noise`` with ``(N, K, 2)`` arrays."""
        for i in np.flatnonzero(worlds & (self._cursor >= self.block)):
            gen = self.generators[i]
            self._normal[i] = gen.standard_normal(self._normal.shape[1:])
            self._uniform[i] = gen.random(self._uniform.shape[1:])
            self._cursor[i] = 0
        at = np.minimum(self._cursor, self.block - 1)
        noise = Noise(self._normal[self._rows, at], self._uniform[self._rows, at])
        self._cursor += worlds
        return noise
