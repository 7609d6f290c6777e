"""ANN retrieval for every model with user and item vectors.

The vector models (BPR, LightGCN, two-tower, lm_mf, lm_lightgcn, CKE, mm_mf, static_embedding)
offer ``user_vectors`` with ``score[u, i] == user_vectors[u] @ item_vectors()[i]``; the
service then retrieves candidates from a faiss index and re-ranks them exactly through
``recommend_batch``. Known answers: the identity on each fitted model; recall@10 of the HNSW
and IVF indexes on planted clusters; the served list with ANN equals the exact list.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fusionrec.models.recommend import recommend_batch, user_vectors_of
from fusionrec.models.registry import get_model
from fusionrec.serving.ann import AnnIndex
from fusionrec.serving.engine import ModelState
from fusionrec.testing.cases import CONFORMANCE_CASES, case_dataset

VECTOR_MODELS = ("bpr", "lightgcn", "two_tower", "lm_mf", "lm_lightgcn", "cke", "mm_mf", "static_embedding")
# lm_lightgcn's default text score term (beta = 2) is not an inner product: tested without it
_CASES = [
    replace(c, params={**c.params, "text_score_weight": 0.0}) if c.model == "lm_lightgcn" else c
    for c in CONFORMANCE_CASES
    if c.model in VECTOR_MODELS
]


@pytest.fixture(scope="module")
def fitted():
    """One fitted model per vector case (fitted once for the module)."""
    out = {}
    for case in _CASES:
        ds = case_dataset(case)()
        out[case.id] = get_model(case.model)(case.params).fit(ds, seed=0)
    return out


def test_every_vector_model_has_a_case() -> None:
    assert {c.model for c in _CASES} == set(VECTOR_MODELS)


@pytest.mark.parametrize("case_id", [c.id for c in _CASES])
def test_user_vectors_reproduce_scores(fitted, case_id: str) -> None:
    m = fitted[case_id]
    uv = user_vectors_of(m)
    iv = np.asarray(m.item_vectors(), dtype=np.float32)
    assert uv is not None and uv.shape == (m.n_users, iv.shape[1])
    exact = m.score_indices(np.arange(m.n_users))
    np.testing.assert_allclose(uv @ iv.T, exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["lm_mf", "lm_lightgcn"])
def test_text_score_term_means_no_user_vectors(name: str) -> None:
    """The text term makes the score more than one inner product: no ANN for it."""
    case = next(c for c in _CASES if c.model == name)
    m = get_model(name)({**case.params, "text_score_weight": 1.0}).fit(case_dataset(case)(), seed=0)
    assert user_vectors_of(m) is None
    state = ModelState.from_model(m, ann=True)
    assert state.ann is None and state.retriever is None


@pytest.mark.parametrize("case_id", [c.id for c in _CASES])
def test_ann_state_serves_exact_lists_at_high_ef(fitted, case_id: str) -> None:
    """With ``ann=True`` every vector model gets an HNSW index; at efSearch >= n_items the
    served top-10 (ANN candidates re-ranked exactly) equals the exhaustive top-10."""
    m = fitted[case_id]
    state = ModelState.from_model(m, ann=True, ann_kind="hnsw", ann_nprobe=512, save_index=False)
    assert state.ann is not None and state.ann.kind == "hnsw" and not state.ann.exact
    users = [str(u) for u in m.users_.ids]
    exact = recommend_batch(m, users, 10)
    served = recommend_batch(m, users, 10, retriever=state.retriever, retrieve_n=m.n_items)
    assert {a.strategy for a in served} == {"ann"}
    for e, s in zip(exact, served, strict=True):
        np.testing.assert_array_equal(s.items, e.items)
        np.testing.assert_allclose(s.scores, e.scores, rtol=1e-5, atol=1e-6)


def _planted(n_items: int = 20_000, dim: int = 32, n_clusters: int = 200, seed: int = 0):
    """Items in tight clusters around random unit centres; queries near the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_clusters, n_items)
    items = centres[labels] + 0.15 * rng.normal(size=(n_items, dim)).astype(np.float32)
    queries = centres[rng.integers(0, n_clusters, 300)] + 0.05 * rng.normal(size=(300, dim)).astype(np.float32)
    return items.astype(np.float32), queries.astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_planted_recall_at_10(kind: str) -> None:
    items, queries = _planted()
    truth = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    index = AnnIndex.build(items, threshold=0, kind=kind, nprobe=64)
    assert not index.exact and index.kind == kind
    got, _ = index.search(queries, 10)
    recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got.tolist(), truth.tolist(), strict=True)])
    assert recall >= 0.95, recall


def test_saved_index_of_another_kind_is_rebuilt(tmp_path) -> None:
    items, _ = _planted(n_items=2_000)
    AnnIndex.build(items, threshold=0, kind="hnsw").save(tmp_path / "ann.faiss")
    assert AnnIndex.load(tmp_path / "ann.faiss", 2_000, items.shape[1], kind="hnsw") is not None
    assert AnnIndex.load(tmp_path / "ann.faiss", 2_000, items.shape[1], kind="ivf") is None
    assert AnnIndex.load(tmp_path / "ann.faiss", 2_000, items.shape[1], kind="flat") is None
