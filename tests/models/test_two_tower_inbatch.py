"""Two-tower's in-batch softmax over distinct items equals the B x B masked softmax."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fusionrec.models.neural.two_tower import TwoTower, in_batch_softmax


def _masked_reference(uv, iv_rows, items, log_q_rows=None):
    """The B x B formulation: every positive a column, the other copies of a row's own
    positive masked (the loss before the distinct-item rewrite)."""
    logits = uv @ iv_rows.T
    if log_q_rows is not None:
        logits = logits - log_q_rows[None, :]
    dup = (items[None, :] == items[:, None]) & ~torch.eye(len(items), dtype=torch.bool)
    logits = logits.masked_fill(dup, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(items)))


def test_hand_computed_three_rows():
    # items [7, 7, 9]; scores s[r, item]: row 0 {7: 1, 9: 0}, row 1 {7: 0, 9: 2}, row 2 {7: 1, 9: 1}
    uv = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    cand_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # distinct items 7, 9
    col = torch.tensor([0, 0, 1])
    count = torch.tensor([2, 1])
    # row 0: positive 7 (1), the other copy of 7 masked, negative 9 (0): -log(e / (e + 1))
    # row 1: positive 7 (0), negative 9 (2): -log(1 / (1 + e^2))
    # row 2: positive 9 (1), negatives 7 twice (1, 1): -log(e / 3e) = log 3
    want = (
        -math.log(math.e / (math.e + 1)) - math.log(1 / (1 + math.e**2)) + math.log(3)
    ) / 3
    got = in_batch_softmax(uv, cand_v, col, count)
    assert abs(float(got) - want) < 1e-6


def test_equals_masked_bxb_softmax_with_logq_and_gradients():
    g = torch.Generator().manual_seed(0)
    items = torch.tensor([3, 1, 3, 3, 0, 1, 5, 2, 3, 0])
    uv = torch.randn(len(items), 4, generator=g, requires_grad=True)
    table = torch.randn(6, 4, generator=g, requires_grad=True)
    log_q = torch.log(torch.rand(6, generator=g) + 0.1)
    ref = _masked_reference(uv, table[items], items, log_q[items])
    ref.backward()
    g_uv, g_table = uv.grad.clone(), table.grad.clone()
    uv.grad = table.grad = None
    cand, col, count = torch.unique(items, return_inverse=True, return_counts=True)
    got = in_batch_softmax(uv, table[cand], col, count, log_q[cand])
    got.backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(uv.grad, g_uv)
    torch.testing.assert_close(table.grad, g_table)


def test_module_loss_is_the_masked_softmax(tiny):
    m = TwoTower(embedding_dim=8, feature_dim=4, hidden_dims=(16,), out_dim=8, epochs=1,
                 batch_size=16, id_dropout=0.0, device="cpu").fit(tiny, seed=0)  # fmt: skip
    mod = m.module_.train()
    rng = np.random.default_rng(1)
    rows = rng.choice(tiny.n_interactions, 24)
    u = torch.as_tensor(tiny.user_idx[rows])
    i = torch.as_tensor(tiny.item_idx[rows])
    assert len(torch.unique(i)) < len(i)  # the batch has duplicate items
    with torch.no_grad():
        got = mod.loss({"user": u, "item": i})
        t = m.config.temperature
        ref = _masked_reference(mod.user(u) / t, mod.item(i), i, mod.log_q[i])
    torch.testing.assert_close(got, ref)
