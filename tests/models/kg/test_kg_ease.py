"""kg_ease: EASE with the KG in its Gram matrix; known answers on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import load_model
from fusionrec.models.classic.ease import ease_weights
from fusionrec.models.kg.cold_items import kg_item_profiles
from fusionrec.models.kg.kg_ease import KGEASE, kg_ease_weights
from fusionrec.models.registry import get_model
from fusionrec.testing.toy import toy_dataset


def _data(with_cold: bool = False) -> Dataset:
    """Items a..f. Users 0-3 saw {a, b}, users 4-7 saw {c, d}; e is seen once (user 8, with a)
    and shares a director entity with c only; f (cold when ``with_cold``) shares an actor
    with d only."""
    rows = [(u, i) for u in range(4) for i in "ab"] + [(u, i) for u in range(4, 8) for i in "cd"]
    rows += [(8, "a"), (8, "e")]
    if not with_cold:
        rows += [(9, "f"), (9, "b")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).astype(str)
    items = pd.DataFrame({"item_id": list("abcdef")})
    triples = pd.DataFrame(
        {
            "head_id": ["E_c", "E_e", "E_d", "E_f", "E_a"],
            "relation_id": ["directed_by", "directed_by", "starring", "starring", "genre"],
            "tail_id": ["dir1", "dir1", "act1", "act1", "g1"],
        }
    )
    link = pd.DataFrame({"item_id": list("abcdef"), "entity_id": [f"E_{i}" for i in "abcdef"]})
    return Dataset.from_frames(inter, items=items, kg_triples=triples, kg_link=link, name="kgtoy")


def _idx(ds: Dataset, ids: str) -> np.ndarray:
    return ds.items.to_idx(np.array(list(ids)))


def test_kg_weight_zero_is_ease() -> None:
    ds = _data()
    x = ds.matrix("csr")
    b = kg_ease_weights(x, kg_item_profiles(ds.kg, ds.n_items), 2.0, 0.0, dtype="float64")
    want = ease_weights((x.T @ x).toarray(), 2.0)
    np.testing.assert_allclose(b, want, atol=1e-6)
    m = KGEASE(reg_weight=2.0, kg_weight=0.0, dtype="float64").fit(ds, seed=0)
    np.testing.assert_allclose(m.B_, want, atol=1e-6)


def test_shared_entity_links_items_nobody_saw_together() -> None:
    ds = _data()
    c, e = _idx(ds, "ce")
    x = ds.matrix("csr")
    prof = kg_item_profiles(ds.kg, ds.n_items)
    plain = kg_ease_weights(x, prof, 1.0, 0.0, dtype="float64")
    with_kg = kg_ease_weights(x, prof, 1.0, 1.0, dtype="float64")
    assert abs(plain[c, e]) < 1e-9  # never seen together: EASE has no weight between them
    assert with_kg[c, e] > 0.01  # the shared director gives c -> e a positive weight
    # hand-computed: the KG Gram term is alpha * K K^T with alpha = kg_weight * mean diag(X^T X)
    kk = (prof @ prof.T).toarray()
    gram = (x.T @ x).toarray()
    g = gram + 1.0 * np.diag(gram).mean() * kk
    np.testing.assert_allclose(with_kg, ease_weights(g, 1.0), atol=1e-6)
    # a user who saw only c is now recommended e above the unrelated a and b
    m = KGEASE(reg_weight=1.0, kg_weight=1.0).fit(ds, seed=0)
    s = m.score_histories([[int(c)]])[0]
    a, b = _idx(ds, "ab")
    assert s[e] > max(s[a], s[b])


def test_cold_item_reads_its_column_from_kg_neighbours() -> None:
    ds = _data(with_cold=True)
    d, f = _idx(ds, "df")
    assert ds.item_popularity()[f] == 0
    m = KGEASE(reg_weight=1.0, kg_weight=0.3, cold_weight=1.0).fit(ds, seed=0)
    # f's only warm KG neighbour is d: its column is d's column (weight 1, diagonal zero)
    want = m.B_[:, d].copy()
    want[f] = 0.0
    np.testing.assert_allclose(m.B_[:, f], want, atol=1e-6)
    assert np.abs(want).sum() > 0
    c = _idx(ds, "c")[0]
    s = m.score_histories([[int(c)]])[0]
    a, b = _idx(ds, "ab")
    assert s[f] > max(s[a], s[b])  # c's user likes d's kind, and f reads like d


def test_validation_chooses_from_the_grids(monkeypatch) -> None:
    ds = toy_dataset()
    rng = np.random.default_rng(0)
    mask = rng.random(ds.n_interactions) < 0.8
    train, valid = ds.with_interactions(mask), ds.with_interactions(~mask)
    monkeypatch.setattr(KGEASE, "reg_grid", (5.0, 50.0))
    monkeypatch.setattr(KGEASE, "kg_grid", (0.1, 1.0))
    m = KGEASE().fit(train, valid, seed=0)
    assert set(m.valid_grid_) == {(5.0, 0.1), (5.0, 1.0), (50.0, 0.1), (50.0, 1.0)}
    best = max(m.valid_grid_, key=m.valid_grid_.get)
    assert (m.reg_weight_, m.kg_weight_) == best
    fixed = KGEASE(reg_weight=5.0).fit(train, valid, seed=0)
    assert set(fixed.valid_grid_) == {(5.0, 0.1), (5.0, 1.0)}
    alone = KGEASE().fit(train, None, seed=0)  # no validation: the defaults
    assert (alone.reg_weight_, alone.kg_weight_) == (500.0, 0.3)
    assert alone.valid_grid_ == {}


def test_save_load_keeps_chosen_settings(tmp_path) -> None:
    ds = _data()
    m = KGEASE(reg_weight=1.0, kg_weight=0.3).fit(ds, seed=0)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert (back.reg_weight_, back.kg_weight_, back.cold_weight_) == (1.0, 0.3, 1.0)
    np.testing.assert_allclose(back.score_indices(np.arange(3)), m.score_indices(np.arange(3)))


def test_refuses_without_kg_and_bad_settings() -> None:
    ds = toy_dataset()
    no_kg = Dataset.from_frames(ds.interactions_frame(), name="nokg")
    with pytest.raises(ConfigError, match="knowledge graph"):
        get_model("kg_ease")(reg_weight=1.0, kg_weight=0.1).fit(no_kg, seed=0)
    with pytest.raises(ConfigError, match="kg_weight"):
        KGEASE(kg_weight=-1.0)
    with pytest.raises(ConfigError, match="max_items"):
        KGEASE(reg_weight=1.0, kg_weight=0.1, max_items=3).fit(_data(), seed=0)
