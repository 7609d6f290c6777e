"""NeuMF: fast full scoring equals the pairwise forward, planted pattern, conformance, ml-100k band."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _torch_model_checks import check_model, one_torch_thread  # noqa: F401

from fusionrec.data import Dataset
from fusionrec.models import get_model
from fusionrec.models.neural.neumf import NeuMF, NeuMFConfig, NeuMFModule
from fusionrec.nn.losses import bce_loss


def test_score_all_equals_pairwise_forward():
    c = NeuMFConfig(embedding_dim=4, mlp_embedding_dim=3, hidden_dims=(5, 2), dropout=0.5)
    m = NeuMFModule(7, 9, c)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    m.eval()
    users = torch.tensor([0, 3, 6, 3])
    fast = m.score_all(users, None, max_elems=20)  # forces several user chunks
    slow = m(users[:, None].expand(4, 9), torch.arange(9)[None, :].expand(4, 9))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    items = torch.tensor([8, 2])
    torch.testing.assert_close(m.score_all(users, items), slow[:, [8, 2]], rtol=1e-5, atol=1e-5)


def test_item_table_path_equals_per_pair_path():
    """Training batches with more pairs than items take the item half of the first MLP layer
    over the item table and gather it; fewer pairs compute it per pair: same logits, same grads."""
    c = NeuMFConfig(embedding_dim=4, mlp_embedding_dim=3, hidden_dims=(5, 2), dropout=0.0)
    m = NeuMFModule(7, 9, c)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    users = torch.tensor([0, 3, 6, 3, 5])
    items = torch.tensor([[8, 2, 2], [0, 1, 4], [8, 8, 3], [7, 6, 5], [1, 0, 2]])  # 15 > 9 items
    big = m(users, items)
    big.sum().backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    rows = [m(users[r : r + 1], items[r : r + 1]) for r in range(5)]  # 3 <= 9: per pair
    small = torch.cat(rows)
    small.sum().backward()
    torch.testing.assert_close(big, small, rtol=1e-5, atol=1e-6)
    for n, p in m.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-5, atol=1e-6, msg=n)


def test_bce_loss_known_value():
    # logits 0 for both -> each term is log 2
    assert float(bce_loss(torch.zeros(2), torch.zeros(2, 3))) == pytest.approx(np.log(2))
    # a confident right answer costs ~0
    assert float(bce_loss(torch.tensor([20.0]), torch.tensor([-20.0]))) < 1e-8


PLANTED = dict(
    epochs=40, batch_size=32, lr=0.01, embedding_dim=8, mlp_embedding_dim=8,
    hidden_dims=(16, 8), dropout=0.0, num_negatives=2,
)  # fmt: skip


def _two_groups() -> tuple[Dataset, dict[str, set[str]]]:
    """16 users x 16 items in two taste groups; each user misses 2 items of their own group
    (the planted answer: those 2 are the user's top-2 unseen items)."""
    rng = np.random.default_rng(0)
    rows, hidden = [], {}
    for u in range(16):
        group = range(0, 8) if u < 8 else range(8, 16)
        miss = set(rng.choice(list(group), 2, replace=False).tolist())
        hidden[f"u{u}"] = {f"i{i}" for i in miss}
        rows += [(f"u{u}", f"i{i}") for i in group if i not in miss]
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id"]), name="two-groups"
    ), hidden


@pytest.mark.parametrize("seed", [0, 1])
def test_learns_planted_two_group_pattern(guard_mutation, seed):
    ds, hidden = _two_groups()
    guard_mutation(ds)
    m = NeuMF(**PLANTED).fit(ds, seed=seed)
    rec = m.recommend(list(hidden), k=2)
    hits = sum(set(g["item_id"]) == hidden[u] for u, g in rec.groupby("user_id"))
    assert hits >= 14, hits  # nearly every user gets exactly the two planted items
    s = m.score(["u0", "u15"])
    items = ds.items.to_idx(np.array([f"i{i}" for i in range(16)], dtype=object))
    assert (s[0, items[:8]].mean() - s[0, items[8:]].mean()) > 1.0
    assert (s[1, items[8:]].mean() - s[1, items[:8]].mean()) > 1.0


def test_conformance(tiny, tmp_path):
    check_model(
        NeuMF,
        dict(
            epochs=2,
            batch_size=8,
            embedding_dim=4,
            mlp_embedding_dim=4,
            hidden_dims=(8, 4),
        ),
        tiny,
        tmp_path,
    )


def test_registered_and_recbole_like_architecture():
    assert get_model("neumf") is NeuMF
    c = NeuMFConfig()
    # RecBole's widths; dropout (RecBole: 0.1) is off by default, chosen on validation NDCG@10
    assert (c.embedding_dim, c.mlp_embedding_dim, c.hidden_dims, c.dropout) == (
        64,
        64,
        (128, 64),
        0.0,
    )
    # a fixed-length schedule: validated once, after the last epoch
    assert c.eval_every >= c.epochs


def test_fused_optimizer_matches_default_optimizer(tiny):
    """The fused Adam kernel is an implementation detail: same fit to float rounding."""
    kw = dict(epochs=3, batch_size=8, embedding_dim=4, mlp_embedding_dim=4,
              hidden_dims=(8, 4))  # fmt: skip
    fused = NeuMF(fused_optimizer=True, **kw).fit(tiny, seed=3)
    plain = NeuMF(fused_optimizer=False, **kw).fit(tiny, seed=3)
    init = NeuMF(**{**kw, "epochs": 1, "lr": 1e-9}).fit(tiny, seed=3)  # ~ the initial weights
    users = np.arange(tiny.n_users)
    a, b, c0 = (m.score_indices(users) for m in (fused, plain, init))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(a - c0).max() > 1e-3  # and both really trained


def test_bad_config_is_refused():
    from fusionrec.errors import ConfigError

    with pytest.raises(ConfigError, match="dropout"):
        NeuMF(dropout=1.5)


@pytest.mark.slow
def test_ml100k_quality_band(ml100k):
    from fusionrec.data import split
    from fusionrec.evaluation import Evaluator

    sp_ = split(ml100k, "rs", (0.8, 0.1, 0.1), seed=2020)
    m = NeuMF().fit(sp_.train, sp_.valid, seed=2020)
    r = Evaluator(ks=(10,)).evaluate_split(m, sp_)
    # RecBole 1.2.1 NeuMF: NDCG@10 0.2790
    assert r["ndcg@10"] >= 0.279
    assert r["recall@10"] >= 0.2
