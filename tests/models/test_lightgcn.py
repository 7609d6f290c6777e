"""LightGCN: hand-computed propagation, planted two-group pattern, conformance, ml-100k band."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401
from torch import nn

from fusionrec.models import get_model
from fusionrec.models.graph.lightgcn import LightGCN
from fusionrec.nn.graph import normalized_adjacency, propagate, to_torch_sparse

# 3 users x 3 items: u0-{i0,i1}, u1-{i1}, u2-{i1,i2}. Degrees: users 2,1,2; items 1,3,1.
R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=np.float32))
s2, s6, s3 = 1 / math.sqrt(2), 1 / math.sqrt(6), 1 / math.sqrt(3)
# Â[u, i] = 1 / sqrt(deg(u) deg(i)), nodes ordered u0 u1 u2 i0 i1 i2
A_HAND = np.array(
    [
        [0, 0, 0, s2, s6, 0],
        [0, 0, 0, 0, s3, 0],
        [0, 0, 0, 0, s6, s2],
        [s2, 0, 0, 0, 0, 0],
        [s6, s3, s6, 0, 0, 0],
        [0, 0, s2, 0, 0, 0],
    ]
)


def test_normalized_adjacency_matches_hand_computation():
    a = normalized_adjacency(R)
    np.testing.assert_allclose(a.toarray(), A_HAND, rtol=1e-6)


def test_propagation_is_the_layer_mean_of_adjacency_powers():
    x = torch.arange(12, dtype=torch.float32).reshape(6, 2) / 10
    adj = to_torch_sparse(normalized_adjacency(R))
    got = propagate(adj, x, n_layers=2).numpy()
    xn = x.numpy().astype(np.float64)
    want = (xn + A_HAND @ xn + A_HAND @ A_HAND @ xn) / 3
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_propagation_gradient_matches_dense():
    adj = to_torch_sparse(normalized_adjacency(R))
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    (propagate(adj, x, 3) * w).sum().backward()
    xd = x.detach().clone().requires_grad_(True)
    ad = torch.tensor(A_HAND, dtype=torch.float32)
    h, acc = xd, xd
    for _ in range(3):
        h = ad @ h
        acc = acc + h
    ((acc / 4) * w).sum().backward()
    torch.testing.assert_close(x.grad, xd.grad)


def test_model_uses_the_hand_adjacency(tiny):
    # users u0..u5 and items a..f; the fitted module's propagation equals the dense formula
    m = LightGCN(epochs=1, batch_size=8, n_layers=2, embedding_dim=4).fit(tiny, seed=0)
    a = normalized_adjacency(tiny.matrix("csr")).toarray()
    e0 = m.module_.embedding.weight.detach().numpy().astype(np.float64)
    want = (e0 + a @ e0 + a @ a @ e0) / 3
    u = want[: tiny.n_users]
    i = want[tiny.n_users :]
    np.testing.assert_allclose(
        m.score_indices(np.arange(tiny.n_users)), u @ i.T, rtol=1e-4, atol=1e-5
    )


def test_isolated_nodes_get_zero_rows():
    r = sp.csr_matrix(np.array([[1, 0], [0, 0]], dtype=np.float32))
    a = normalized_adjacency(r).toarray()
    assert a[1].sum() == 0 and a[:, 3].sum() == 0 and a[0, 2] == pytest.approx(1.0)


PLANTED = dict(
    epochs=60, batch_size=4, lr=0.02, embedding_dim=8, n_layers=2, reg_weight=1e-4, num_negatives=2
)


@pytest.mark.parametrize("seed", [0, 1])
def test_learns_planted_two_group_pattern(tiny, guard_mutation, seed):
    guard_mutation(tiny)
    m = LightGCN(**PLANTED).fit(tiny, seed=seed)
    rec = m.recommend(["u0", "u2", "u4"], k=1)
    assert rec["item_id"].tolist() == ["c", "c", "f"]
    s = m.score(["u0", "u3"])
    items = tiny.items.to_idx(np.array(list("abcdef"), dtype=object))
    # each user's own group scores above every item of the other group
    assert s[0, items[:3]].min() > s[0, items[3:]].max()
    assert s[1, items[3:]].min() > s[1, items[:3]].max()


def test_conformance(tiny, tmp_path):
    check_model(LightGCN, dict(epochs=3, batch_size=8, embedding_dim=8), tiny, tmp_path)


def test_registered():
    assert get_model("lightgcn") is LightGCN


def test_eval_cache_is_refreshed_after_training(tiny):
    m = LightGCN(epochs=2, batch_size=8, embedding_dim=4).fit(tiny, seed=0)
    before = m.score_indices(np.arange(3)).copy()
    m.module_.train()
    with torch.no_grad():
        m.module_.embedding.weight.mul_(2.0)
    after = m.score_indices(np.arange(3))
    np.testing.assert_allclose(after, 4 * before, rtol=1e-5)


@pytest.mark.slow
def test_ml100k_quality_band(ml100k):
    from fusionrec.data import split
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)
    m = LightGCN().fit(sp_.train, sp_.valid, seed=2020)
    r = Evaluator(ks=(10,)).evaluate_split(m, sp_)
    # RecBole 1.2.1 LightGCN: NDCG@10 0.2116 (early-stopped); BPR ~0.29-0.30
    assert r["ndcg@10"] >= 0.29
    assert r["recall@10"] >= 0.2


def test_bf16_autocast_trains(tiny):
    m = LightGCN(epochs=2, batch_size=8, embedding_dim=4, amp="bf16").fit(tiny, seed=0)
    assert np.isfinite(m.score_indices(np.arange(6))).all()
    assert m.module_.embedding.weight.dtype == torch.float32


# ---- scoring cache: reused across score calls, refreshed whenever the weights change


def _fresh_scores(m: LightGCN, users: np.ndarray) -> np.ndarray:
    """Scores from the module's current weights by the dense formula (no cache involved)."""
    a = normalized_adjacency(sp.csr_matrix(m.seen_)).toarray()
    e0 = m.module_.embedding.weight.detach().numpy().astype(np.float64)
    e = (e0 + a @ e0 + a @ a @ e0) / 3
    return e[: m.n_users][users] @ e[m.n_users :].T


@pytest.fixture
def fitted(tiny) -> LightGCN:
    return LightGCN(epochs=2, batch_size=8, n_layers=2, embedding_dim=4).fit(tiny, seed=0)


def test_cache_is_reused_across_score_calls(fitted):
    m, users = fitted, np.arange(3)
    first = m.score_indices(users)
    n = m.module_.propagations
    for _ in range(5):  # score_indices calls eval() each time: the cache survives it
        np.testing.assert_array_equal(m.score_indices(users), first)
    m.recommend(["u0", "u1"], k=2)
    m.item_vectors(), m.user_vectors()
    m.module_.eval()
    assert m.module_.propagations == n


def test_cache_refreshed_after_an_optimizer_step_in_eval_mode(fitted):
    m, users = fitted, np.arange(6)
    m.score_indices(users)
    mod = m.module_.eval()  # no train(True): only the step can tell the cache
    opt = torch.optim.Adam(mod.parameters(), lr=0.1, fused=True)  # fused Adam bumps no versions
    batch = {"users": torch.tensor([0, 1]), "pos": torch.tensor([0, 1]), "neg": torch.tensor([[2], [3]])}
    sum(mod.loss(batch).values()).backward()
    assert mod.embedding.weight.grad is not None  # a gradient-enabled call bypasses the cache
    before = m.score_indices(users)
    opt.step()
    after = m.score_indices(users)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, _fresh_scores(m, users), rtol=1e-4, atol=1e-5)


def test_cache_refreshed_after_further_training(fitted, tiny):
    m, users = fitted, np.arange(6)
    m.score_indices(users)
    m.module_.train()
    mod = m.module_
    opt = torch.optim.SGD(mod.parameters(), lr=1.0)
    batch = {"users": torch.tensor([0, 4]), "pos": torch.tensor([0, 5]), "neg": torch.tensor([[3], [1]])}
    sum(mod.loss(batch).values()).backward()
    opt.step()
    np.testing.assert_allclose(m.score_indices(users), _fresh_scores(m, users), rtol=1e-4, atol=1e-5)


def test_cache_refreshed_after_load_state_dict(fitted, tiny):
    m, users = fitted, np.arange(6)
    other = LightGCN(epochs=2, batch_size=8, n_layers=2, embedding_dim=4).fit(tiny, seed=5)
    m.score_indices(users)
    m.module_.load_state_dict(other.module_.state_dict())
    np.testing.assert_allclose(m.score_indices(users), other.score_indices(users), rtol=1e-5, atol=1e-6)


def test_cache_refreshed_after_an_in_place_edit_in_eval_mode(fitted):
    m, users = fitted, np.arange(3)
    before = m.score_indices(users).copy()
    with torch.no_grad():  # the version counter sees it: no call needed
        m.module_.embedding.weight.mul_(2.0)
    np.testing.assert_allclose(m.score_indices(users), 4 * before, rtol=1e-5)
    with torch.no_grad():
        m.module_.embedding.weight.copy_(torch.zeros_like(m.module_.embedding.weight))
    assert np.abs(m.score_indices(users)).max() == 0


def test_cache_refreshed_after_a_replaced_parameter(fitted):
    m, users = fitted, np.arange(3)
    before = m.score_indices(users).copy()
    m.module_.embedding.weight = nn.Parameter(m.module_.embedding.weight.detach() * 3.0)
    np.testing.assert_allclose(m.score_indices(users), 9 * before, rtol=1e-5)


def test_edits_through_data_need_invalidate_cache(fitted):
    m, users = fitted, np.arange(3)
    before = m.score_indices(users).copy()
    m.module_.embedding.weight.data.mul_(2.0)  # invisible to the version counter
    np.testing.assert_array_equal(m.score_indices(users), before)  # the documented limit
    m.module_.invalidate_cache()
    np.testing.assert_allclose(m.score_indices(users), 4 * before, rtol=1e-5)


def test_training_mode_and_gradient_calls_never_read_the_cache(fitted):
    mod = fitted.module_.eval()
    with torch.no_grad():
        cached = mod.propagated()
    assert mod.propagated() is not cached and mod.propagated().requires_grad
    mod.train()
    with torch.no_grad():
        assert mod.propagated() is not cached


class _Scoring(nn.Module):
    def __init__(self, model: LightGCN) -> None:
        super().__init__()
        self.model, self.inner = model, model.module_

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.model.score_tensor(users, None)


def test_export_uses_the_cached_propagation_as_a_constant(fitted):
    m = fitted
    users = np.arange(m.n_users)
    ref = m.score_indices(users)  # fills the cache eagerly, as the ONNX export does
    n = m.module_.propagations
    with torch.no_grad():
        prog = torch.export.export(_Scoring(m), (torch.arange(2),), strict=False,
                                   dynamic_shapes=({0: torch.export.Dim("batch")},))  # fmt: skip
    got = prog.module()(torch.arange(m.n_users)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    # nothing traced was stored: the cache is still the real tensor and still answers eagerly
    assert m.module_.propagations == n and type(m.module_._cache) is torch.Tensor
    np.testing.assert_array_equal(m.score_indices(users), ref)
