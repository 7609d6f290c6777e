"""ItemCoverage, GiniIndex, ShannonEntropy, TailPercentage and AveragePopularity give RecBole
1.2.1's values on the same recommendations, to 1e-6.

Two references:

* ``_port_*``: RecBole 1.2.1's ``recbole/evaluator/metrics.py`` transcribed line by line (loops,
  Counter, dict look-ups as RecBole writes them) — always runs;
* RecBole's own file, run unmodified, when its source is available: ``RECBOLE_SRC`` (a folder
  holding ``recbole/``, e.g. the unzipped wheel of ``pip download recbole==1.2.1 --no-deps``) or
  an installed ``recbole``. Importing the ``recbole`` package itself needs tensorboard and
  friends, so the test loads only ``evaluator/base_metric.py``, ``evaluator/utils.py``,
  ``evaluator/metrics.py`` and ``utils/enum_type.py`` under stub parent packages.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fusionrec.evaluation import beyond

N_ITEMS = 60
K = 10


def _recs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    count = rng.poisson(3.0, N_ITEMS) * rng.integers(0, 2, N_ITEMS)  # some items unseen in training
    p = np.arange(1, N_ITEMS + 1, dtype=float) ** -1.2
    rec = np.stack([rng.choice(N_ITEMS, K, replace=False, p=p / p.sum()) for _ in range(37)])
    return rec.astype(np.int64), count.astype(np.int64)


# ----------------------------------------------------------------- the transcribed reference
def _port_coverage(item_matrix: np.ndarray, num_items: int) -> float:
    return np.unique(item_matrix).shape[0] / num_items


def _port_gini(item_matrix: np.ndarray, num_items: int) -> float:
    item_count = dict(Counter(item_matrix.flatten()))
    sorted_count = np.array(sorted(item_count.values()))
    num_recommended_items = sorted_count.shape[0]
    total_num = item_matrix.shape[0] * item_matrix.shape[1]
    idx = np.arange(num_items - num_recommended_items + 1, num_items + 1)
    gini_index = np.sum((2 * idx - num_items - 1) * sorted_count) / total_num
    return gini_index / num_items


def _port_entropy(item_matrix: np.ndarray) -> float:
    item_count = dict(Counter(item_matrix.flatten()))
    total_num = item_matrix.shape[0] * item_matrix.shape[1]
    result = 0.0
    for cnt in item_count.values():
        p = cnt / total_num
        result += -p * np.log(p)
    return result / len(item_count)


def _port_tail(item_matrix: np.ndarray, count_items: dict, tail: float) -> np.ndarray:
    if tail > 1:
        tail_items = [item for item, cnt in count_items.items() if cnt <= tail]
    else:
        count_items = sorted(count_items.items(), key=lambda kv: (kv[1], kv[0]))
        cut = max(int(len(count_items) * tail), 1)
        tail_items = [item for item, cnt in count_items[:cut]]
    value = np.zeros_like(item_matrix)
    for i in range(item_matrix.shape[0]):
        for j in range(item_matrix.shape[1]):
            value[i][j] = 1 if item_matrix[i, j] in tail_items else 0
    return (value.cumsum(axis=1) / np.arange(1, value.shape[1] + 1)).mean(axis=0)


def _port_pop(item_matrix: np.ndarray, item_count: dict) -> np.ndarray:
    value = np.zeros_like(item_matrix)
    for i in range(item_matrix.shape[0]):
        for j in range(item_matrix.shape[1]):
            value[i][j] = item_count.get(item_matrix[i, j], 0)
    return (value.cumsum(axis=1) / np.arange(1, value.shape[1] + 1)).mean(axis=0)


def _counter(count: np.ndarray) -> dict:
    """RecBole's ``data.count_items``: a Counter over training interactions (seen items only)."""
    return {int(i): int(c) for i, c in enumerate(count) if c > 0}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_matches_transcribed_recbole(seed: int, k: int) -> None:
    rec, count = _recs(seed)
    m = rec[:, :k]
    assert beyond.item_coverage(rec, N_ITEMS, k) == pytest.approx(_port_coverage(m, N_ITEMS), abs=1e-6)
    assert beyond.gini_index(rec, N_ITEMS, k) == pytest.approx(_port_gini(m, N_ITEMS), abs=1e-6)
    assert beyond.shannon_entropy(rec, k) == pytest.approx(_port_entropy(m), abs=1e-6)
    for tail in (0.1, 0.5, 2, 4):
        want = _port_tail(rec, _counter(count), tail)[k - 1]
        assert beyond.tail_percentage(rec, count, k, tail).mean() == pytest.approx(want, abs=1e-6)
    want = _port_pop(rec, _counter(count))[k - 1]
    assert beyond.average_popularity(rec, count, k).mean() == pytest.approx(want, abs=1e-6)


# ------------------------------------------------------------------- RecBole's own source file
def _recbole_root() -> Path | None:
    env = os.environ.get("RECBOLE_SRC")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("recbole")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def recbole_metrics(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    root = _recbole_root()
    if root is None or not (root / "recbole" / "evaluator" / "metrics.py").is_file():
        pytest.skip("RecBole 1.2.1 source not found (set RECBOLE_SRC to an unzipped recbole wheel)")
    pytest.importorskip("sklearn")
    for name in list(sys.modules):
        if name == "recbole" or name.startswith("recbole."):
            monkeypatch.delitem(sys.modules, name)
    for pkg in ("recbole", "recbole.evaluator", "recbole.utils"):
        mod = types.ModuleType(pkg)
        mod.__path__ = []  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, pkg, mod)
    enum = _load("recbole.utils.enum_type", root / "recbole/utils/enum_type.py")
    sys.modules["recbole.utils"].EvaluatorType = enum.EvaluatorType  # type: ignore[attr-defined]
    _load("recbole.evaluator.utils", root / "recbole/evaluator/utils.py")
    _load("recbole.evaluator.base_metric", root / "recbole/evaluator/base_metric.py")
    mod = _load("recbole.evaluator.metrics", root / "recbole/evaluator/metrics.py")
    yield mod
    for name in ("recbole.utils.enum_type", "recbole.evaluator.utils", "recbole.evaluator.base_metric", "recbole.evaluator.metrics"):
        sys.modules.pop(name, None)


class _Data:
    def __init__(self, **kw: object) -> None:
        self.kw = kw

    def get(self, key: str) -> object:
        return self.kw[key]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_recbole_source(recbole_metrics: types.ModuleType, seed: int) -> None:
    import torch

    rec, count = _recs(seed)
    ks = [1, 5, 10]
    data = _Data(**{
        "rec.items": torch.from_numpy(rec),
        "data.num_items": N_ITEMS,
        "data.count_items": Counter(_counter(count)),
    })
    for tail in (0.1, 0.5, 2):
        config = {"topk": ks, "metric_decimal_place": 12, "tail_ratio": tail}
        rb = {}
        for cls in ("ItemCoverage", "GiniIndex", "ShannonEntropy", "TailPercentage", "AveragePopularity"):
            rb.update(getattr(recbole_metrics, cls)(config).calculate_metric(data))
        for k in ks:
            assert beyond.item_coverage(rec, N_ITEMS, k) == pytest.approx(rb[f"itemcoverage@{k}"], abs=1e-6)
            assert beyond.gini_index(rec, N_ITEMS, k) == pytest.approx(rb[f"giniindex@{k}"], abs=1e-6)
            assert beyond.shannon_entropy(rec, k) == pytest.approx(rb[f"shannonentropy@{k}"], abs=1e-6)
            got_tail = beyond.tail_percentage(rec, count, k, tail).mean()
            assert got_tail == pytest.approx(rb[f"tailpercentage@{k}"], abs=1e-6)
            got_pop = beyond.average_popularity(rec, count, k).mean()
            assert got_pop == pytest.approx(rb[f"averagepopularity@{k}"], abs=1e-6)
