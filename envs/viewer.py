"""A pygame (pygame-ce) window that shows frames: ``render_mode="human"`` and ``vim-world play``."""

from __future__ import annotations

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np
import pygame


class Viewer:
    """A window of ``size`` × ``size`` pixels. Headless-safe under ``SDL_VIDEODRIVER=dummy``."""

    def __init__(self, size: int, title: str):
        pygame.display.init()
        pygame.display.set_caption(title)
        self.size = size
        self.screen = pygame.display.set_mode((size, size))
        self.clock = pygame.time.Clock()

    def show(self, frame: np.ndarray, fps: int) -> None:
        """Draw an ``(H, W, 3)`` uint8 frame, scaled to the window, and keep ``fps``."""
        pygame.event.pump()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        if surface.get_width() != self.size:
            surface = pygame.transform.scale(surface, (self.size, self.size))
        self.screen.blit(surface, (0, 0))
        pygame.display.flip()
        self.clock.tick(fps)

    def pressed(self) -> list[int]:
        """Keys pressed since the last call; ``pygame.QUIT`` appears as ``-1``."""
        keys = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                keys.append(-1)
            elif event.type == pygame.KEYDOWN:
                keys.append(event.key)
        return keys

    def close(self) -> None:
        pygame.display.quit()
