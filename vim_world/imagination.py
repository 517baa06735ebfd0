"""Imagination: sample module-composed futures from a trained VIM.

One entry point, :meth:`Imagination.rollout`: a context (observed steps, or an already-encoded
:class:`LatentState`) and optionally action sequences go in; N sampled futures come out as a
:class:`Rollout`, batched over contexts, candidate action sequences and samples in one pass on
the model's device (the only Python loop is over the horizon).

Shape letters: B contexts, C candidate action sequences, N sampled futures, T horizon steps,
K object slots, D latent size, M modules, A action-vector size, S state features.

Time alignment (as in :mod:`vim_world.batch`): from the context's last state ``z_0``, action
``a_t`` is taken in state ``z_t``, earns ``rewards[..., t] = R(z_t, a_t)`` and leads to
``z_{t+1}``, stored at ``z[..., t, :, :]``. So ``z``, ``obs``, ``selections`` and ``probs`` hold
steps ``1..T``; ``rewards`` the rewards of actions ``0..T-1``.

Module composition: an :class:`Intervention` forces module ``m`` (or ``HOLD``: the object's
current module) onto object ``k`` for steps ``[start, stop)``; every other object-step samples
the learnt switching prior. :meth:`Imagination.counterfactual` runs a rollout with and without
an intervention under the same random draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vim_world.actions import action_vectors  # noqa: F401  (re-exported: part of this API)
from vim_world.batch import Batch
from vim_world.model import VIM, VIMConfig
from vim_world.model.distributions import sample_categorical

DECODE_FLOATS = 2**27
"""About the most floats of one decoder activation that :meth:`Imagination.decode` holds at once
(0.5 GB in float32); a scene larger than that is decoded alone."""
HOLD = -2
"""``Intervention.module`` value that keeps the object's current module."""
_SAMPLE = -1


@dataclass(frozen=True)
class Intervention:
    """Force ``module`` onto object ``obj`` for imagined steps ``start <= t < stop``.

    Step ``t`` is the transition ``z_t -> z_{t+1}`` (0 is the first imagined step). ``stop=None``
    means to the end of the horizon. ``module=HOLD`` keeps whatever module drives the object
    when the step is taken (the context's last inferred module at ``t = 0``; sampled if unknown).
    """

    obj: int
    module: int
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        for name in ("obj", "module", "start", "stop"):
            value = getattr(self, name)
            if value is None and name == "stop":
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Intervention.{name} must be an int, got {type(value).__name__} {value!r}")
        if self.obj < 0:
            raise ValueError(f"Intervention.obj must be an object index >= 0, got {self.obj}")
        if self.module < 0 and self.module != HOLD:
            raise ValueError(f"Intervention.module must be a module index >= 0 or HOLD ({HOLD}), got {self.module}")
        if self.start < 0 or (self.stop is not None and self.stop < self.start):
            raise ValueError(f"Intervention steps must satisfy 0 <= start <= stop, got [{self.start}, {self.stop})")


def _check_finite(name: str, x: Tensor | np.ndarray | None) -> None:
    """ValueError naming ``name`` when a float tensor holds NaN or infinity (which would
    otherwise silently change inferred modules or fail inside ``multinomial``)."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        x = torch.from_numpy(x)
    if torch.is_tensor(x) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or infinity); expected finite numbers")


@dataclass(frozen=True)
class LatentState:
    """An encoded state to imagine from.

    Attributes:
        z: ``(B, K, D)`` object latents.
        c: ``(B, K)`` int64 module that drove each object into ``z`` (-1 when unknown).
        z_before: ``(B, K, D)`` the latents one step before ``z``, which the modules of a
            second-order model (``VIMConfig.transition_order = 2``) read; None reads as ``z``
            itself (no change yet, as at the first observed step). First-order models ignore it.
    """

    z: Tensor
    c: Tensor
    z_before: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.z.shape[0]

    def index(self, rows: Tensor | slice) -> LatentState:
        """The states of the selected rows."""
        return LatentState(self.z[rows], self.c[rows], None if self.z_before is None else self.z_before[rows])

    def repeat(self, n: int) -> LatentState:
        """Each state repeated ``n`` times in a row, ``(B * n, ...)``."""
        before = None if self.z_before is None else self.z_before.repeat_interleave(n, 0)
        return LatentState(self.z.repeat_interleave(n, 0), self.c.repeat_interleave(n, 0), before)

    def with_rows(self, where: Tensor, fresh: LatentState) -> LatentState:
        """A copy whose rows ``where`` (``(B,)`` bool) are replaced by ``fresh``'s states, in order."""
        z, c = self.z.clone(), self.c.clone()
        z[where], c[where] = fresh.z, fresh.c
        if self.z_before is None and fresh.z_before is None:
            return LatentState(z, c)
        z_before = (self.z if self.z_before is None else self.z_before).clone()
        z_before[where] = fresh.z if fresh.z_before is None else fresh.z_before
        return LatentState(z, c, z_before)


@dataclass(frozen=True)
class Rollout:
    """Sampled futures. Leading dims ``L`` are ``(B, N)``, or ``(B, C, N)`` with candidates.

    Attributes:
        z: ``(*L, T, K, D)`` object latents after each step.
        selections: ``(*L, T, K)`` int64 module that drove each object at each step.
        probs: ``(*L, T, K, M)`` switching-prior probabilities the selections were drawn from.
        rewards: ``(*L, T)`` predicted reward of each action, or None without a reward head.
        obs: ``(*L, T, K, S)`` decoded states or ``(*L, T, C_img, H, W)`` frames, or None when
            not decoded.
        masks: ``(*L, T, K, H, W)`` per-slot alpha masks (pixel models, when decoded), else None.
        terminations: ``(*L, T)`` predicted probability that the episode terminates after each
            action (the termination head), or None without a reward head.
        z_before_last: ``(*L, K, D)`` the latents one step before the last (the context's at
            ``T = 1``), which a second-order model continues from; None for first-order models.
    """

    z: Tensor
    selections: Tensor
    probs: Tensor
    rewards: Tensor | None
    obs: Tensor | None
    masks: Tensor | None
    terminations: Tensor | None = None
    z_before_last: Tensor | None = None

    @property
    def last_state(self) -> LatentState:
        """The final imagined state, flattened to ``(prod(L), K, D)``, to continue from."""
        k, d = self.z.shape[-2:]
        before = None if self.z_before_last is None else self.z_before_last.reshape(-1, k, d)
        return LatentState(self.z[..., -1, :, :].reshape(-1, k, d), self.selections[..., -1, :].reshape(-1, k), before)


@dataclass(frozen=True)
class Counterfactual:
    """A rollout and the same rollout with one intervention, under identical random draws."""

    factual: Rollout
    intervened: Rollout


def intervention_plan(
    interventions: Sequence[Intervention],
    horizon: int,
    num_slots: int,
    num_modules: int,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``(T, K)`` int64 plan: a module id, ``HOLD``, or -1 (sample from the prior) per object-step.

    Later interventions override earlier ones where they overlap.
    """
    plan = torch.full((horizon, num_slots), _SAMPLE, dtype=torch.long, device=device)
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise TypeError(f"interventions must be Intervention objects, got {type(iv).__name__} {iv!r}")
        if not 0 <= iv.obj < num_slots:
            raise ValueError(f"intervention object {iv.obj} out of range [0, {num_slots})")
        if iv.module != HOLD and not 0 <= iv.module < num_modules:
            raise ValueError(f"intervention module {iv.module} out of range [0, {num_modules}) (or HOLD)")
        stop = horizon if iv.stop is None else iv.stop
        if not 0 <= iv.start <= stop <= horizon:
            raise ValueError(f"intervention steps [{iv.start}, {iv.stop}) outside the horizon {horizon}")
        plan[iv.start : stop, iv.obj] = iv.module
    return plan


class Imagination:
    """Imagined rollouts of a VIM world model.

    Args:
        model: a :class:`~vim_world.model.VIM` (any input mode; actions and rewards when its
            config has ``action_dim > 0`` and ``reward_head``).
    """

    def __init__(self, model: VIM) -> None:
        if not isinstance(model, VIM):
            raise TypeError(f"Imagination needs a VIM, got {type(model).__name__}")
        self.model = model

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Imagination:
        """Load a trained VIM from a checkpoint or run directory (eval mode, on ``device``)."""
        from vim_world.train import load_model

        model, _ = load_model(path, device=device)
        return cls(model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def config(self) -> VIMConfig:
        return self.model.config

    def for_num_objects(self, num_objects: int) -> Imagination:
        """The same weights on scenes of ``num_objects`` objects: a state model gets that many
        slots, a pixel model one more (the background's); see :meth:`VIM.resized` for the
        pixel models that cannot change their slot count."""
        if isinstance(num_objects, bool) or not isinstance(num_objects, (int, np.integer)) or num_objects < 1:
            raise ValueError(f"num_objects must be a positive int, got {num_objects!r}")
        extra = 1 if self.config.input_mode == "pixels" else 0
        return Imagination(self.model.resized(int(num_objects) + extra))

    # ------------------------------------------------------------------------------- encoding

    def encode(
        self,
        obs: Tensor | np.ndarray,
        actions: Tensor | np.ndarray | None = None,
        states: Tensor | np.ndarray | None = None,
    ) -> LatentState:
        """Encode observed steps into the state to imagine from.

        Args:
            obs: ``(B, Tc, K, S)`` states or ``(B, Tc, C, H, W)`` frames, ``Tc >= 1``; or numpy
                observations as the env returns them (frames ``(B, Tc, H, W, 3)`` uint8).
            actions: ``(B, Tc - 1, A)`` (or ``(B, Tc, A)``, the last one unused) actions taken
                between the context steps; may be None when ``Tc == 1``.
            states: ``(B, Tc, K, S)`` the objects' states (``info["states"]``), needed only by a
                pixel model with ``config.slot_cues`` (it reads the first frame's positions).
        """
        obs, actions = _as_tensor(obs, self, observation=True), _as_tensor(actions, self)
        states = _as_tensor(states, self)
        _check_finite("context observations", obs)
        _check_finite("context actions", actions)
        a = self.config.action_dim
        if len(obs.shape) < 2:
            raise ValueError(f"obs must be (B, Tc, ...), got shape {tuple(obs.shape)}")
        b, tc = obs.shape[:2]
        if a == 0:
            actions = None
        elif actions is None:
            if tc > 1:
                raise ValueError(f"a context of {tc} steps needs the {tc - 1} actions between them")
            actions = obs.new_zeros(b, tc, a)
        elif actions.shape[1] == tc - 1:
            actions = torch.cat([actions, actions.new_zeros(b, 1, a)], dim=1)
        posterior = self.model.observe(Batch(obs=obs, actions=actions, states=states))
        before = posterior.z_mean[:, -2] if tc > 1 and self.config.transition_order == 2 else None
        return LatentState(posterior.last_z, posterior.last_c, before)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """``z (*L, K, D)`` -> observations ``(*L, K, S)`` or ``(*L, C, H, W)``, and masks or None.

        A pixel model decodes in chunks of scenes, each holding at most about
        :data:`DECODE_FLOATS` floats in one decoder activation (K x hidden x H x W per scene):
        decoding is per scene, so the result is that of one call (to float rounding), and a long
        imagined rollout of many samples no longer holds every scene's activations at once."""
        lead = z.shape[:-2]
        flat = z.reshape(-1, *z.shape[-2:])
        c = self.config
        per_scene = z.shape[-2] * (c.decoder_hidden or c.hidden) * c.image_size**2 if c.input_mode == "pixels" else 1
        parts = [self.model.decode(chunk) for chunk in flat.split(max(1, DECODE_FLOATS // per_scene))]
        obs = torch.cat([part.obs for part in parts])
        masks = None if parts[0].masks is None else torch.cat([part.masks for part in parts])
        return obs.reshape(*lead, *obs.shape[1:]), None if masks is None else masks.reshape(*lead, *masks.shape[1:])

    # ------------------------------------------------------------------------------ imagining

    def step(
        self,
        state: LatentState,
        action: Tensor | None = None,
        forced: Tensor | None = None,
        generator: torch.Generator | None = None,
        sample_z: bool = True,
    ) -> tuple[LatentState, Tensor]:
        """One imagined step of ``B`` states: :meth:`VIM.prior_step` computing only the selected modules.

        Same random draws, in the same order, as ``VIM.prior_step`` (selections, then noise), but
        each object-step runs only the module that drives it (see :meth:`ModuleBank.selected`),
        M times less transition compute.

        Args:
            state: ``(B, K, D)`` latents and ``(B, K)`` previous selections (and, for a
                second-order model, the latents before them).
            action: ``(B, A)`` action vectors, or None for passive models.
            forced: ``(B, K)`` int64 modules to impose; -1 entries are sampled from the prior.

        Returns:
            the next state and the switching-prior probabilities ``(B, K, M)``.
        """
        z, c_prev = state.z, state.c
        second_order = self.config.transition_order == 2
        before = (z if state.z_before is None else state.z_before) if second_order else None
        m = self.config.num_modules
        c_prev_onehot = F.one_hot(c_prev.clamp(min=0), m).to(z.dtype) * (c_prev >= 0).unsqueeze(-1).to(z.dtype)
        probs = self.model.switching_prior(z, c_prev_onehot, action).softmax(-1)
        c = sample_categorical(probs, generator)
        if forced is not None:
            c = torch.where(forced >= 0, forced, c)
        bank = self.model.transitions
        z_next, log_std = bank.selected(z, action, c, before)
        if sample_z:
            z_next = bank.add_noise(z_next, log_std, generator)
        return LatentState(z_next, c, z if second_order else None), probs

    def rollout(
        self,
        context: LatentState | Tensor | np.ndarray,
        actions: Tensor | np.ndarray | None = None,
        horizon: int | None = None,
        n_samples: int = 1,
        *,
        context_actions: Tensor | None = None,
        context_states: Tensor | None = None,
        interventions: Sequence[Intervention] = (),
        seed: int | None = None,
        generator: torch.Generator | None = None,
        sample_z: bool = True,
        decode: bool = True,
    ) -> Rollout:
        """Sample ``n_samples`` futures of ``horizon`` steps from each context (and candidate).

        Runs with gradients (wrap in ``torch.no_grad()`` for speed): with ``sample_z=False`` the
        latents follow the selected modules' means, a differentiable function of the context and
        actions (selections are discrete samples and carry no gradient).

        Args:
            context: a :class:`LatentState` ``(B, ...)``, or observations ``(B, Tc, ...)``
                (encoded with :meth:`encode`, ``context_actions`` and ``context_states``).
            actions: ``(B, T, A)`` one sequence per context, or ``(B, C, T, A)`` C candidate
                sequences per context; float action vectors (one-hot for discrete actions, see
                :func:`action_vectors`). None for passive models.
            horizon: T; defaults to the actions' length (required without actions).
            n_samples: N futures per context and candidate.
            interventions: module composition by hand, applied to every future.
            seed: seeds a fresh ``torch.Generator`` (ignored when ``generator`` is given);
                equal seeds give identical rollouts.
            sample_z: add module transition noise; False gives each module's mean (differentiable).
            decode: decode observations (turn off when only rewards are needed).

        Returns:
            a :class:`Rollout` with leading dims ``(B, N)`` or ``(B, C, N)``.
        """
        state = context if isinstance(context, LatentState) else self.encode(context, context_actions, context_states)
        actions = _as_tensor(actions, self)
        horizon, actions, lead = self._check_actions(state, actions, horizon, n_samples)
        if generator is None and seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        cfg = self.config
        k = state.z.shape[1]  # state models run on any number of objects
        plan = intervention_plan(interventions, horizon, k, cfg.num_modules, self.device)

        repeat = int(torch.Size(lead[1:]).numel())  # futures per context: C * N
        current = state.repeat(repeat)
        z, c = current.z, current.c
        zs, cs, ps, rs, ds = [], [], [], [], []
        for t in range(horizon):
            a_t = None if actions is None else actions[:, t]
            if self.model.task_heads is not None:
                reward, logit = self.model.task(z, a_t)
                rs.append(reward)
                ds.append(logit.sigmoid())
            forced = torch.where(plan[t] == HOLD, c, plan[t]).expand_as(c)
            before = current.z
            current, p = self.step(current, a_t, forced, generator, sample_z)
            z, c = current.z, current.c
            zs.append(z)
            cs.append(c)
            ps.append(p)
        z_all = torch.stack(zs, 1).reshape(*lead, horizon, *z.shape[1:])
        obs, masks = self.decode(z_all) if decode else (None, None)
        return Rollout(
            z=z_all,
            selections=torch.stack(cs, 1).reshape(*lead, horizon, k),
            probs=torch.stack(ps, 1).reshape(*lead, horizon, k, cfg.num_modules),
            rewards=torch.stack(rs, 1).reshape(*lead, horizon) if rs else None,
            obs=obs,
            masks=masks,
            terminations=torch.stack(ds, 1).reshape(*lead, horizon) if ds else None,
            z_before_last=before.reshape(*lead, *z.shape[1:]) if cfg.transition_order == 2 else None,
        )

    def counterfactual(
        self,
        context: LatentState | Tensor,
        obj: int,
        module: int,
        horizon: int,
        actions: Tensor | None = None,
        n_samples: int = 1,
        *,
        start: int = 0,
        stop: int | None = None,
        context_actions: Tensor | None = None,
        context_states: Tensor | None = None,
        seed: int = 0,
        sample_z: bool = True,
    ) -> Counterfactual:
        """What if object ``obj`` switched to ``module`` at step ``start`` (until ``stop``)?

        Both rollouts use the same seed, so every difference between them is caused by the
        intervention. Arguments as in :meth:`rollout`.
        """
        state = context if isinstance(context, LatentState) else self.encode(context, context_actions, context_states)
        common = dict(actions=actions, horizon=horizon, n_samples=n_samples, seed=seed, sample_z=sample_z)
        return Counterfactual(
            factual=self.rollout(state, **common),
            intervened=self.rollout(state, interventions=[Intervention(obj, module, start, stop)], **common),
        )

    def _check_actions(
        self, state: LatentState, actions: Tensor | None, horizon: int | None, n_samples: int
    ) -> tuple[int, Tensor | None, tuple[int, ...]]:
        """Validate; return the horizon, actions flattened to ``(B * C * N, T, A)`` and ``L``."""
        a, b = self.config.action_dim, state.batch_size
        _check_finite("context latents", state.z)
        for name, value in (("n_samples", n_samples), ("horizon", horizon)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if actions is None:
            if a > 0:
                raise ValueError(f"this model takes actions (action_dim={a}); pass actions (B, [C,] T, {a})")
            if horizon is None or horizon < 1:
                raise ValueError(f"horizon must be >= 1 without actions, got {horizon}")
            return horizon, None, (b, n_samples)
        if a == 0:
            raise ValueError("this model takes no actions (action_dim=0); pass actions=None")
        if not torch.is_tensor(actions):
            raise TypeError(f"actions must be a torch.Tensor (B, [C,] T, A), got {type(actions).__name__}")
        _check_finite("actions", actions)
        if actions.dim() not in (3, 4) or actions.shape[0] != b or actions.shape[-1] != a:
            raise ValueError(f"actions must be (B={b}, [C,] T, A={a}), got {tuple(actions.shape)}")
        t = actions.shape[-2]
        if horizon is not None and horizon != t:
            raise ValueError(f"horizon={horizon} but the actions have {t} steps")
        cands = actions.shape[1:-2]  # () or (C,)
        lead = (b, *cands, n_samples)
        flat = actions.to(self.device, state.z.dtype).unsqueeze(-3).expand(*lead, t, a)
        return t, flat.reshape(-1, t, a), lead


def observations_to_tensor(observations: np.ndarray, config: VIMConfig, device: torch.device | str = "cpu") -> Tensor:
    """Env observations -> model inputs: states ``(*L, K, S)`` float32 as they are, frames
    ``(*L, H, W, 3)`` uint8 -> ``(*L, 3, H, W)`` float32 in [0, 1]."""
    x = torch.as_tensor(np.asarray(observations), device=device)
    if config.input_mode == "pixels":
        return x.movedim(-1, -3).float().div_(255.0)
    return x.float()


def _as_tensor(x: Tensor | np.ndarray | None, im: Imagination, observation: bool = False) -> Tensor | None:
    """numpy inputs -> tensors on the model's device (observations as :func:`observations_to_tensor`
    converts them, on any leading dims); tensors and None pass through."""
    if not isinstance(x, np.ndarray):
        return x
    if observation:
        return observations_to_tensor(x, im.config, im.device)
    return torch.as_tensor(x, dtype=torch.float32, device=im.device)
