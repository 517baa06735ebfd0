"""The bank of M transition modules, each applied to every object in one batched call."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .distributions import gaussian_kl, soft_clamp_log_std
from .layers import StackedLinear


def _one_module(x: Tensor, params: list[Tensor]) -> Tensor:
    """One module's residual ``(R, D)`` on its inputs ``x (R, in)``: ``params`` holds each layer's
    weight ``(in, out)`` and bias ``(out,)`` in turn, ReLU between layers."""
    h = x
    for i in range(0, len(params), 2):
        h = torch.addmm(params[i + 1], h.relu_() if i else h, params[i])
    return h


class ContextAttention(nn.Module):
    """Each slot reads the *other* slots through single-head attention (a contextual bottleneck).

    A learnt null key/value is always attendable, so a slot with no other slots (K = 1) reads it.
    ``scores="dot"`` scores a key by its dot product with the query, scaled by ``1 / sqrt(hidden)``;
    ``"l2"`` by minus their squared distance times a learnt scale (initially ``1 / sqrt(hidden)``),
    so that attention can single out the nearest other slot.
    Maps ``z (N, K, D)`` to ``context (N, K, hidden)``.
    """

    def __init__(self, latent_dim: int, hidden: int, scores: str = "dot") -> None:
        super().__init__()
        if scores not in ("dot", "l2"):
            raise ValueError(f"scores={scores!r} (expected 'dot' or 'l2')")
        self.query = nn.Linear(latent_dim, hidden)
        self.key_value = nn.Linear(latent_dim, 2 * hidden)
        self.null_key_value = nn.Parameter(torch.zeros(2 * hidden))
        self.scale = 1.0 / math.sqrt(hidden)
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.scale))) if scores == "l2" else None

    def forward(self, z: Tensor) -> Tensor:
        n, k, _ = z.shape
        keys, values = self.key_value(z).chunk(2, dim=-1)
        null_key, null_value = self.null_key_value.expand(n, 1, -1).chunk(2, dim=-1)
        keys = torch.cat([keys, null_key], dim=1)
        values = torch.cat([values, null_value], dim=1)
        query = self.query(z)
        if self.log_scale is None:
            scores = torch.einsum("nqh,nkh->nqk", query, keys) * self.scale
        else:
            scores = -(query[:, :, None] - keys[:, None]).pow(2).sum(-1) * self.log_scale.exp()
        self_mask = F.pad(torch.eye(k, dtype=torch.bool, device=z.device), (0, 1))
        scores = scores.masked_fill(self_mask, float("-inf"))
        return torch.einsum("nqk,nkh->nqh", scores.softmax(-1), values)


class ModuleBank(nn.Module):
    """M residual transition modules ``z' = z + f_m(z, a, ctx)`` with stacked ``(M, in, out)`` weights;
    ``f_m`` has ``layers`` hidden ReLU layers (0: an affine map). With ``history``, ``f_m`` also
    reads each object's change since the step before, ``z - z_before`` (a second-order law:
    velocity from two positions, acceleration from three). A latent may end with
    ``static_dim`` observed attributes (``VIMConfig.static_features``): modules neither read nor
    change them, and they carry no transition noise.

    Every module runs on every object at once (one einsum per layer), so the caller can weigh,
    select or marginalise over modules freely. Each module also owns a per-dimension
    transition log-std.
    """

    def __init__(
        self,
        latent_dim: int,
        action_dim: int,
        hidden: int,
        num_modules: int,
        nary: bool,
        min_log_std: float,
        layers: int = 2,
        static_dim: int = 0,
        nary_scores: str = "dot",
        history: bool = False,
    ) -> None:
        super().__init__()
        self.latent_dim, self.static_dim, self.history = latent_dim, static_dim, history
        self.context = ContextAttention(latent_dim, hidden, nary_scores) if nary else None
        in_dim = (2 if history else 1) * latent_dim + action_dim + (hidden if nary else 0)
        dims = [in_dim] + [hidden] * layers + [latent_dim]
        self.layers = nn.ModuleList(StackedLinear(num_modules, d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.raw_log_std = nn.Parameter(torch.zeros(num_modules, latent_dim))
        self.min_log_std = min_log_std

    def forward(self, z: Tensor, action: Tensor | None, before: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Predict the next latent of every object under every module.

        Args:
            z: ``(N, K, D + static)`` current object latents.
            action: ``(N, A)`` action, broadcast to every object, or None.
            before: ``(N, K, D + static)`` the latents one step earlier (a bank with ``history``
                needs them; pass ``z`` itself where there is no earlier step), else None.

        Returns:
            means ``(N, K, M, D + static)`` and log-stds ``(M, D)`` (dynamic dims only).
        """
        h = self.layers[0](self._inputs(z, action, before), shared_input=True)
        for layer in self.layers[1:]:
            h = layer(F.relu(h), shared_input=False)
        return self._with_static(z.unsqueeze(-2), h), self.log_std()

    def log_std(self) -> Tensor:
        """Every module's transition log-std ``(M, D)`` on the dynamic dims."""
        return soft_clamp_log_std(self.raw_log_std, self.min_log_std)

    def _inputs(self, z: Tensor, action: Tensor | None, before: Tensor | None) -> Tensor:
        """What a module reads: the dynamic dims, their change since ``before`` (with ``history``),
        the action and the attention context ``(N, K, in)``."""
        dynamic = z[..., : self.latent_dim]
        parts = [dynamic]
        if self.history:
            if before is None or before.shape != z.shape:
                got = None if before is None else tuple(before.shape)
                raise ValueError(f"a second-order module bank needs before {tuple(z.shape)} (like z), got {got}")
            parts.append(dynamic - before[..., : self.latent_dim])
        if action is not None:
            parts.append(action[:, None, :].expand(-1, z.shape[1], -1))
        if self.context is not None:
            parts.append(self.context(dynamic))
        return torch.cat(parts, dim=-1)

    def _with_static(self, z: Tensor, delta: Tensor) -> Tensor:
        """``z (..., D + static)`` with ``delta (..., D)`` added to its dynamic dims (broadcast)."""
        d = self.latent_dim
        dynamic = z[..., :d] + delta
        if not self.static_dim:
            return dynamic
        return torch.cat([dynamic, z[..., d:].expand(*dynamic.shape[:-1], self.static_dim)], dim=-1)

    def add_noise(self, z: Tensor, log_std: Tensor, generator: torch.Generator | None) -> Tensor:
        """``z (..., D + static)`` plus Gaussian noise of std ``exp(log_std (..., D))`` on its dynamic dims."""
        noise = torch.randn(log_std.shape, generator=generator, device=z.device, dtype=z.dtype)
        return z + F.pad(torch.exp(log_std) * noise, (0, self.static_dim))

    def selected(
        self, z: Tensor, action: Tensor | None, selection: Tensor, before: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Each object's prediction under its selected module only.

        Equals :meth:`forward`'s means gathered at ``selection`` (tested), but object-steps are
        grouped by module and each group runs one dense matmul chain, so the cost is that of
        one module, not M. The loop is over the M modules, never over objects or samples.

        Args:
            z: ``(N, K, D + static)`` latents; ``action``: ``(N, A)`` or None; ``selection``: ``(N, K)`` int64;
            ``before``: as in :meth:`forward`.

        Returns:
            means ``(N, K, D + static)`` and the selected modules' log-stds ``(N, K, D)``.
        """
        x = self._inputs(z, action, before).flatten(0, 1)
        flat_sel = selection.flatten()
        order = torch.argsort(flat_sel)
        counts = torch.bincount(flat_sel, minlength=self.raw_log_std.shape[0]).tolist()
        outputs = []
        for m, rows in enumerate(torch.split(x[order], counts)):
            if rows.shape[0] == 0:
                continue
            outputs.append(_one_module(rows, [t for layer in self.layers for t in (layer.weight[m], layer.bias[m])]))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        delta = torch.cat(outputs)[inverse].view(*z.shape[:-1], self.latent_dim)
        return self._with_static(z, delta), self.log_std()[selection]

    @torch.no_grad()
    def copy_module(self, source: int, targets: list[int], noise: float, generator: torch.Generator) -> None:
        """Overwrite modules ``targets`` with module ``source``, weights perturbed by ``noise``
        times their std (so the copies can drift apart), transition log-std copied as is."""
        for layer in self.layers:
            for t in targets:
                jitter = torch.randn(layer.weight[source].shape, generator=generator).to(layer.weight)
                layer.weight[t] = layer.weight[source] + noise * layer.weight[source].std() * jitter
                layer.bias[t] = layer.bias[source]
        self.raw_log_std[targets] = self.raw_log_std[source].clone()

    def module_params(self, m: int) -> list[Tensor]:
        """Detached copies of module ``m``'s parameters: per layer weight and bias, then its raw log-std."""
        return [t.detach().clone() for layer in self.layers for t in (layer.weight[m], layer.bias[m])] + [
            self.raw_log_std[m].detach().clone()
        ]

    def fit_module(
        self,
        params: list[Tensor],
        z: Tensor,
        action: Tensor | None,
        rows: Tensor,
        next_mean: Tensor,
        next_log_std: Tensor,
        steps: int = 100,
        lr: float = 0.01,
        before: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """One module, fit alone to some object-steps from ``params`` (:meth:`module_params`):
        ``steps`` Adam steps on ``KL(q(z') || N(f(z), sigma))`` over its weights and transition
        log-std (0 steps: only score it). Nothing in the bank changes; :meth:`load_module`
        installs a result.

        Args:
            z: ``(N, K, D + static)`` latents before the transitions (the context reads them all).
            action: ``(N, A)`` or None.
            rows: ``(R, 2)`` int64 (n, k) indices of the object-steps to fit.
            next_mean, next_log_std: ``(R, D)`` the posterior of those object-steps after the transition.
            before: as in :meth:`forward`, ``(N, K, D + static)``.
        Returns: the fitted parameters and the fitted module's KL on each row ``(R,)``.
        """
        with torch.no_grad():
            x = self._inputs(z, action, before)[rows[:, 0], rows[:, 1]]
            start = z[rows[:, 0], rows[:, 1], : self.latent_dim]
        params = [p.detach().clone().requires_grad_(True) for p in params]

        def kl() -> Tensor:
            log_std = soft_clamp_log_std(params[-1], self.min_log_std)
            return gaussian_kl(next_mean, next_log_std, start + _one_module(x, params[:-1]), log_std).sum(-1)

        if steps and rows.shape[0]:
            optimizer = torch.optim.Adam(params, lr=lr)
            with torch.enable_grad():
                for _ in range(steps):
                    optimizer.zero_grad()
                    kl().mean().backward()
                    optimizer.step()
        with torch.no_grad():
            return [p.detach() for p in params], kl()

    @torch.no_grad()
    def load_module(self, target: int, params: list[Tensor]) -> None:
        """Install parameters from :meth:`fit_module` as module ``target``."""
        for i, layer in enumerate(self.layers):
            layer.weight[target] = params[2 * i]
            layer.bias[target] = params[2 * i + 1]
        self.raw_log_std[target] = params[-1]
