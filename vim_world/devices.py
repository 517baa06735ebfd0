"""Devices: the one place where a ``--device`` name is checked and resolved."""

from __future__ import annotations

import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""Device types the package runs on (plus ``"auto"``)."""


def available_devices() -> list[str]:
    """Names usable here: ``auto``, ``cpu``, and each CUDA device (``cuda``, ``cuda:0``, ...) and
    ``mps`` when present."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def check_device_name(name: object) -> None:
    """ValueError/TypeError unless ``name`` is ``"auto"`` or ``cpu``/``cuda``/``mps`` with an
    optional ``:index`` (whether it exists here is checked by :func:`resolve_device`)."""
    if not isinstance(name, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {name!r}")
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(
            f"unknown device {name!r}; expected 'auto' or one of {DEVICE_TYPES} "
            f"(optionally ':N'); available here: {available_devices()}"
        )


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise the named device, which must exist
    here. ValueError names the device and the available ones."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index is not None and device.index >= torch.cuda.device_count())
    ):
        raise ValueError(f"device {name!r} is not available here; available: {available_devices()}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} is not available here; available: {available_devices()}")
    return device
