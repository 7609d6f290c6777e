"""Feature attributions with Captum's Integrated Gradients for ``deepfm`` and ``two_tower``.

Both models build a (user, item) score from *fields*: the user id, each user feature (gender,
age, occupation, ...), the item id, each item feature (genres, year, text embedding, ...).
Each field gets a gate g ∈ [0, 1] that scales its vector (and, for DeepFM, its first-order
weight); g = 1 everywhere is the model's score, g = 0 everywhere the score with no field
present. Integrated Gradients (Sundararajan et al. 2017, via ``captum.attr``) integrates the
gradient along the straight path between them, so the attributions sum to
``score(all fields) - score(no field)`` (completeness; ``delta`` reports the numerical error).
Gating a field's vector is the same as IG over that vector from a zero baseline, summed.

Needs the ``explain`` extra (``pip install "fusionrec[explain]"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["FeatureAttribution", "integrated_gradients", "supports_feature_attribution"]


@dataclass
class FeatureAttribution:
    """Attribution per field (``side.name``, e.g. ``user.gender``, ``item.id``), best first."""

    method: str
    fields: list[tuple[str, float]]
    score: float
    baseline_score: float
    delta: float


def supports_feature_attribution(model: object) -> bool:
    mod = getattr(model, "module_", None)
    return mod is not None and (_is_deepfm(mod) or _is_two_tower(mod))


def _is_deepfm(mod: object) -> bool:
    return all(hasattr(mod, a) for a in ("user_id", "item_id", "user_feat1", "rest", "side"))


def _is_two_tower(mod: object) -> bool:
    return hasattr(mod, "user") and hasattr(mod, "item") and hasattr(mod.user, "feats")


def _deepfm_forward(mod: torch.nn.Module, users: torch.Tensor, items: torch.Tensor):
    """Gated DeepFM logit; the same algebra as ``DeepFMModule.logit`` (tested equal at g=1)."""

    def parts(rows: torch.Tensor, user: bool) -> tuple[torch.Tensor, torch.Tensor]:
        idm, id1, feat, feat1, warm = (
            (mod.user_id, mod.user_id1, mod.user_feat, mod.user_feat1, mod.warm_users)
            if user
            else (mod.item_id, mod.item_id1, mod.item_feat, mod.item_feat1, mod.warm_items)
        )
        w = warm[rows].unsqueeze(-1).float()
        fields = torch.cat([(idm(rows) * w).unsqueeze(1), feat.fields(rows)], 1)
        lin = torch.cat([id1(rows) * w, feat1.fields(rows)[..., 0]], 1)
        return fields, lin

    with torch.no_grad():  # constants along the IG path: only the gates vary
        uf, ul = parts(users, True)
        itf, il = parts(items, False)

    def forward(gu: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        f = torch.cat([uf * gu.unsqueeze(-1), itf * gi.unsqueeze(-1)], 1)
        lin = (ul * gu).sum(1) + (il * gi).sum(1)
        fm = 0.5 * (f.sum(1).pow(2) - f.pow(2).sum(1)).sum(-1)
        h = f.flatten(1)
        deep = mod._deep(mod.first(h)) if mod.first is not None else mod._deep(h)
        return mod.bias + lin + fm + deep

    names = ["user.id", *(f"user.{n}" for n in mod.user_feat.names), "item.id", *(f"item.{n}" for n in mod.item_feat.names)]
    return forward, uf.shape[1], itf.shape[1], names


def _two_tower_forward(mod: torch.nn.Module, users: torch.Tensor, items: torch.Tensor):
    """Gated two-tower score (cosine of the towers' outputs), as ``TwoTower.score_tensor``."""
    import torch.nn.functional as F

    # the id field is (B, 1, d_id) and feature fields (B, F, d_feat): keep them apart
    with torch.no_grad():  # constants along the IG path: only the gates vary
        xu_id = mod.user.id_emb(users) * mod.user.warm[users].unsqueeze(-1)
        xi_id = mod.item.id_emb(items) * mod.item.warm[items].unsqueeze(-1)
        fu = mod.user.feats.fields(users)
        fi = mod.item.feats.fields(items)

    def forward(gu: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        hu = torch.cat([xu_id * gu[:, :1], (fu * gu[:, 1:].unsqueeze(-1)).flatten(1)], 1)
        hi = torch.cat([xi_id * gi[:, :1], (fi * gi[:, 1:].unsqueeze(-1)).flatten(1)], 1)
        return (F.normalize(mod.user.net(hu), dim=-1) * F.normalize(mod.item.net(hi), dim=-1)).sum(-1)

    names = ["user.id", *(f"user.{n}" for n in mod.user.feats.names), "item.id", *(f"item.{n}" for n in mod.item.feats.names)]
    return forward, 1 + fu.shape[1], 1 + fi.shape[1], names


def integrated_gradients(model: object, user_idx: int, item_idx: int, n_steps: int = 512) -> FeatureAttribution:
    """IG attributions of ``model``'s score of (user, item) to its fields (see the module docstring)."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('feature attributions need captum: pip install "fusionrec[explain]"') from e
    mod = getattr(model, "module_", None)
    if mod is None or not supports_feature_attribution(model):
        raise ValueError(f"model {getattr(model, 'name', type(model).__name__)!r} has no field inputs for Integrated Gradients (deepfm, two_tower)")
    was_training = mod.training
    mod.eval()
    try:
        dev = next(mod.parameters()).device
        u = torch.as_tensor([int(user_idx)], device=dev)
        i = torch.as_tensor([int(item_idx)], device=dev)
        build = _deepfm_forward if _is_deepfm(mod) else _two_tower_forward
        forward, nu, ni, names = build(mod, u, i)
        ones = (torch.ones(1, nu, device=dev), torch.ones(1, ni, device=dev))
        zeros = (torch.zeros(1, nu, device=dev), torch.zeros(1, ni, device=dev))
        with torch.no_grad():
            score = float(forward(*ones))
            base = float(forward(*zeros))
        ig = IntegratedGradients(forward)
        attr, delta = ig.attribute(ones, baselines=zeros, n_steps=n_steps, return_convergence_delta=True)
    finally:
        mod.train(was_training)
    vals = torch.cat([attr[0][0], attr[1][0]]).detach().float().cpu().numpy().astype(np.float64)
    order = np.argsort(-np.abs(vals), kind="stable")
    method = "integrated_gradients"
    return FeatureAttribution(method, [(names[o], float(vals[o])) for o in order], score, base, float(delta.abs().max()))
