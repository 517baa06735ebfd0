"""A training run's options: :class:`TrainConfig`, read from code, a JSON/TOML file or flags.

One source: every field's type annotation is its type check, and its ``metadata["help"]`` its
``vim-world train`` help text; the CLI flags are derived from the fields (:func:`train_flags`).
The model names, preset sizes and input modes come from :mod:`vim_world.model`.
"""

from __future__ import annotations

import json
import math
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vim_world.model import MODELS, PRESETS, VIMConfig
from vim_world.model.config import INPUT_MODES

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
"""Trainable model names, from :data:`vim_world.model.MODELS`."""
PRESET_SIZES: tuple[str, ...] = tuple(dict.fromkeys(name.split("-")[0] for name in PRESETS))
"""Preset sizes (``tiny``, ``default``): :data:`vim_world.model.PRESETS` is ``{size}-{mode}``."""
RESUMABLE_CHANGES = frozenset({"steps", "progress", "log_every", "checkpoint_every", "device", "compile",
                               "allow_changed", "data", "out", "restarts", "select_at"})  # fmt: skip
"""Options a resumed run may change freely (e.g. train longer; ``data`` is compared by content,
``out`` is where the run is; a run chosen among restarts resumes as its chosen seed, with or
without ``restarts``); any other change is refused unless named in ``allow_changed``."""
ALLOWABLE_CHANGES = frozenset({"lr", "grad_clip"})
"""Options a resumed run may change when asked for explicitly (``--allow-changed lr,grad_clip``)."""
DATA_DERIVED = frozenset({"input_mode", "state_dim", "num_slots", "image_size", "action_dim", "reward_head",
                          "static_features"})  # fmt: skip
"""VIMConfig fields read off the data set; ``overrides`` may not set them."""


def _opt(default: Any, help: str, **extra: Any) -> Any:
    """A field with its help text (and ``choices``) in its metadata."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **extra})
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    """One training run. Every field is a ``vim-world train`` flag (``grad_clip`` -> ``--grad-clip``);
    each field's help text is in its metadata."""

    data: str = field(metadata={"help": "data set directory (from `vim-world collect`); required, here or in --config"})
    out: str = field(metadata={"help": "run directory: checkpoints/, tb/ (TensorBoard), train_config.json; required"})
    model: str = _opt("vim", "world model to train", choices=MODEL_NAMES)
    preset: str = _opt("tiny", "model preset size; the input mode comes from --mode", choices=PRESET_SIZES)
    mode: str = _opt("state", "model input: object states or frames", choices=INPUT_MODES)
    overrides: dict[str, Any] = _opt({}, "JSON VIMConfig overrides, e.g. '{\"num_modules\": 8}'")
    steps: int = _opt(2000, "total optimisation steps of the run (a resumed run trains up to this step)")
    batch_size: int = _opt(32, "global batch size, split over the processes")
    seq_len: int = _opt(10, "window length in steps")
    lr: float = _opt(1e-3, "Adam learning rate")
    warmup_steps: int = _opt(
        0, "linear learning-rate warm-up from lr / warmup_steps to lr over this many steps (0: off)"
    )
    lr_half_life: int = _opt(
        0, "exponential learning-rate decay: lr halves every this many steps, as Slot Attention trains (0: off)"
    )
    grad_clip: float = _opt(10.0, "gradient-norm clipping threshold")
    head_weight_decay: float = _opt(
        0.1, "decoupled (AdamW) weight decay on the reward and termination heads (their own group, clipped apart)"
    )
    seed: int = _opt(0, "seed of batches, noise and initialisation")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N (under torchrun each process takes cuda:LOCAL_RANK)")
    amp: bool = _opt(True, "bf16 autocast on CUDA")
    compile: bool = _opt(False, "torch.compile the networks")
    checkpoint_every: int = _opt(500, "steps between checkpoints")
    log_every: int = _opt(50, "steps between TensorBoard scalars")
    holdout: float = _opt(0.1, "fraction of shards held out of training")
    progress: bool = _opt(True, "show a progress bar")
    revive_every: int = _opt(
        0, "VIM: split moves (an unused module takes over part of a live one's data) every N steps (0: off)"
    )
    restarts: int = _opt(
        0,
        "train seeds --seed .. --seed + N - 1 to --select-at steps, keep the one of best held-out ELBO (no labels "
        "read) and train it on in --out (0: off; see vim_world.restarts)",
    )
    select_at: int = _opt(500, "with --restarts: the step at which the restarts are compared")
    static_attributes: bool = _opt(
        False, "state mode: features constant in every episode (the kind) reach the decoder, never the modules"
    )
    hidden_features: tuple[str, ...] = _opt(
        (),
        "state mode: features the modules and the switching prior never read (comma-separated names, e.g. "
        "vx,vy,dsize: the world without the changes a single frame does not show); they reach the decoder as "
        "observed attributes, like --static-attributes', and imagination carries them unchanged",
    )
    allow_changed: tuple[str, ...] = _opt(
        (), f"on resume, options that may differ from the run's (comma-separated, from {sorted(ALLOWABLE_CHANGES)})"
    )

    def __post_init__(self) -> None:
        # Comma-separated names (a string from a flag, a list from a file) -> a tuple without repeats;
        # option names take underscores ("grad-clip" -> "grad_clip"), feature names are kept as they are.
        for name, underscores in (("allow_changed", True), ("hidden_features", False)):
            value = getattr(self, name)
            names = value.split(",") if isinstance(value, str) else value
            if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
                cleaned = (n.strip().replace("-", "_") if underscores else n.strip() for n in names if n.strip())
                setattr(self, name, tuple(dict.fromkeys(cleaned)))
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), FIELD_TYPES[f.name])
            if "choices" in f.metadata and getattr(self, f.name) not in f.metadata["choices"]:
                raise ValueError(
                    f"{f.name} must be one of {list(f.metadata['choices'])}, got {getattr(self, f.name)!r}"
                )
        for name in ("steps", "batch_size", "seq_len", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 (a window needs a step to predict), got {self.seq_len!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name in ("lr", "grad_clip"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout!r}")
        if self.static_attributes and self.mode != "state":
            raise ValueError(
                f"static_attributes applies to mode='state' (object state features), got mode={self.mode!r}"
            )
        if self.hidden_features:
            from vim_world.envs import STATE_FEATURES

            unknown = sorted(set(self.hidden_features) - set(STATE_FEATURES))
            if unknown:
                raise ValueError(
                    f"hidden_features names unknown features {unknown}; expected names from {list(STATE_FEATURES)}"
                )
            if self.mode != "state":
                raise ValueError(
                    f"hidden_features applies to mode='state' (object state features), got mode={self.mode!r}"
                )
        if not (self.head_weight_decay >= 0 and math.isfinite(self.head_weight_decay)):
            raise ValueError(f"head_weight_decay must be a finite number >= 0 (0: off), got {self.head_weight_decay!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0 (0: off), got {self.warmup_steps!r}")
        if self.lr_half_life < 0:
            raise ValueError(f"lr_half_life must be >= 0 steps (0: off), got {self.lr_half_life!r}")
        if self.restarts < 0 or self.restarts == 1:
            raise ValueError(f"restarts must be 0 (off) or >= 2 seeds to choose among, got {self.restarts!r}")
        if self.restarts and not 1 <= self.select_at <= self.steps:
            raise ValueError(f"select_at must be in [1, steps={self.steps}] with restarts, got {self.select_at!r}")
        if self.restarts and self.model == "copy_last":
            raise ValueError("restarts choose among trained seeds; model='copy_last' has nothing to train")
        if self.restarts and self.holdout == 0:
            raise ValueError("restarts are compared on held-out shards: holdout must be > 0 with restarts, got 0")
        if self.revive_every < 0:
            raise ValueError(f"revive_every must be >= 0 (0: off), got {self.revive_every!r}")
        bad = sorted(set(self.allow_changed) - ALLOWABLE_CHANGES)
        if bad:
            raise ValueError(f"allow_changed names {bad}; only {sorted(ALLOWABLE_CHANGES)} may change on resume")
        from vim_world.devices import check_device_name

        check_device_name(self.device)
        _check_overrides(self.overrides)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a mapping of field names; unknown or missing names are a ValueError."""
        if not isinstance(values, dict):
            raise TypeError(f"training options must be a mapping of field names, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; expected a subset of {sorted(known)}")
        missing = sorted({"data", "out"} - set(values))
        if missing:
            raise ValueError(f"missing required training options {missing}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """A config from a JSON (``.json``) or TOML (``.toml``) file of field names, with
        ``overrides`` (e.g. command-line flags) taking precedence."""
        return cls.from_dict({**read_config_file(path), **overrides})


def _accepted_types(annotation: Any) -> tuple[type, ...]:
    """The Python types a field annotation accepts (a float field also takes an int)."""
    origin = typing.get_origin(annotation) or annotation
    return (int, float) if origin is float else (origin,)


FIELD_TYPES = {name: _accepted_types(hint) for name, hint in typing.get_type_hints(TrainConfig).items()}
"""Accepted types of each field, derived from the annotations."""


def _check_type(name: str, value: Any, kinds: tuple[type, ...]) -> None:
    """TypeError unless ``value`` is one of ``kinds`` (bool is no number, and tuple items are str)."""
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if ok and tuple in kinds:
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        expected = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{name} must be of type {expected}, got {type(value).__name__} {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The table in a ``.json`` or ``.toml`` file; errors name the file and what is wrong."""
    path = Path(path)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"config file {str(path)!r} must end in .json or .toml")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read config file {str(path)!r}: {e}") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"config file {str(path)!r} must hold a table of TrainConfig fields, got {type(values).__name__}"
        )
    return values


def _check_overrides(overrides: dict[str, Any]) -> None:
    """``overrides`` names VIMConfig fields not read off the data, with values of their types."""
    defaults = {f.name: f.default for f in fields(VIMConfig)}
    for key, value in overrides.items():
        if key not in defaults:
            raise ValueError(
                f"overrides: unknown VIMConfig field {key!r}; expected one of {sorted(set(defaults) - DATA_DERIVED)}"
            )
        if key in DATA_DERIVED:
            raise ValueError(f"overrides: {key!r} is read off the data set and cannot be overridden")
        kind = type(defaults[key])
        ok = (
            isinstance(value, bool)
            if kind is bool
            else (not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else kind))
        )
        if not ok:
            raise TypeError(f"overrides: {key} must be a {kind.__name__}, got {value!r}")
