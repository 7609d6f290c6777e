"""SASRec attention weights over a user's history (``sasrec``, ``lm_sasrec``).

The transformer computes attention inside ``scaled_dot_product_attention``, which does not
return the weights, so this module replays the encoder block by block in eval mode and
recomputes each block's softmax(QKᵀ/√d) with the same mask. It reports the weights the most
recent position (the one whose output scores every item) puts on each history position:
the last block's, averaged over heads (``layer="last"``), or attention rollout through all
blocks (Abnar & Zuidema 2020, residual added: ``layer="rollout"``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from fusionrec.explain.contributions import Explanation

__all__ = ["attention_weights", "explain_attention"]


def _is_sasrec(model: object) -> bool:
    mod = getattr(model, "module_", None)
    return mod is not None and hasattr(mod, "encoder") and hasattr(mod, "pos_emb") and hasattr(mod.encoder, "blocks")


@torch.no_grad()
def attention_weights(
    model: object, history: np.ndarray, layer: Literal["last", "rollout"] = "last"
) -> tuple[np.ndarray, np.ndarray]:
    """(history items the model sees — the last ``max_len``, oldest first —, their weights).

    Weights are non-negative and sum to 1 over those items plus the padding slots' share
    (zero: padding keys are masked) — the query position's own weight is included since the
    most recent item is in the history."""
    if not _is_sasrec(model):
        raise ValueError(f"model {getattr(model, 'name', type(model).__name__)!r} has no SASRec attention")
    from fusionrec.models.sequential.sasrec import pad_histories

    mod = model.module_  # type: ignore[attr-defined]
    hist = np.asarray(history, dtype=np.int64)
    max_len = int(model.config.max_len)  # type: ignore[attr-defined]
    seen = hist[-max_len:]
    if len(seen) == 0:
        return seen, np.zeros(0)
    was_training = mod.training
    mod.eval()
    try:
        dev = mod.pos_emb.weight.device
        seq = torch.as_tensor(pad_histories([seen], max_len, model.n_items), device=dev)  # type: ignore[attr-defined]
        valid = seq > 0
        x = mod.item_embeddings(seq) * valid.unsqueeze(-1) + mod.pos_emb.weight[None, : seq.shape[1]]
        enc = mod.encoder
        m = enc.mask(valid)
        maps = []
        for blk in enc.blocks:
            b, n, d = x.shape
            q, k, _ = blk.qkv(blk.ln1(x)).view(b, n, 3, blk.heads, d // blk.heads).permute(2, 0, 3, 1, 4)
            logits = (q @ k.transpose(-1, -2)) / (d // blk.heads) ** 0.5
            logits = logits.masked_fill(~m, float("-inf"))
            maps.append(torch.softmax(logits, -1).mean(1)[0])  # (L, L), heads averaged
            x = blk(x, m)
    finally:
        mod.train(was_training)
    if layer == "last":
        w = maps[-1][-1]
    elif layer == "rollout":
        eye = torch.eye(maps[0].shape[0], device=maps[0].device)
        roll = eye
        for a in maps:
            a = 0.5 * a + 0.5 * eye  # the residual stream
            roll = (a / a.sum(-1, keepdim=True)) @ roll
        w = roll[-1]
    else:
        raise ValueError(f"layer must be 'last' or 'rollout', got {layer!r}")
    w = w.float().cpu().numpy()[-len(seen):]  # right-aligned: the last len(seen) slots hold the history
    return seen, w.astype(np.float64)


def explain_attention(
    model: object, history: np.ndarray, top: int = 5, layer: Literal["last", "rollout"] = "last"
) -> Explanation:
    """The ``top`` history items the most recent position attends to most (same for any item)."""
    items, w = attention_weights(model, history, layer)
    order = np.argsort(-w, kind="stable")[:top]
    return Explanation(f"attention_{layer}", [(int(items[o]), float(w[o])) for o in order])
