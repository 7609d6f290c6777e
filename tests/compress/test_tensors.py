"""Per-tensor compression: hand-computed pruning cases, exact pruning counts, structured pruning
of whole dimensions, int8 error bounds and the encode -> restore round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fusionrec.compress import parse_method
from fusionrec.compress.tensors import (
    compressible_layers,
    encode,
    int8_rows,
    prune_magnitude,
    prune_structured,
    restore,
)
from fusionrec.errors import ModelStateError


def test_magnitude_pruning_known_answer() -> None:
    w = torch.tensor([[0.5, -0.1, 2.0], [-3.0, 0.2, 0.05]])
    # half of 6 = 3 smallest |w|: 0.05, -0.1, 0.2
    assert torch.equal(prune_magnitude(w, 0.5), torch.tensor([[0.5, 0.0, 2.0], [-3.0, 0.0, 0.0]]))
    assert torch.equal(prune_magnitude(w, 0.1), torch.tensor([[0.5, -0.1, 2.0], [-3.0, 0.2, 0.0]]))  # round(0.6) = 1


@pytest.mark.parametrize("ratio", [0.1, 0.37, 0.5, 0.9])
def test_magnitude_pruning_zeroes_the_exact_share_of_the_smallest(ratio: float) -> None:
    w = torch.randn(97, 13, generator=torch.Generator().manual_seed(1))
    p = prune_magnitude(w, ratio)
    k = round(ratio * w.numel())
    assert int((p == 0).sum()) == k
    kept = p != 0
    assert torch.equal(p[kept], w[kept])  # survivors untouched
    assert w[~kept].abs().max() <= w[kept].abs().min()  # the zeroed are the smallest


def test_magnitude_pruning_counts_ties_exactly() -> None:
    w = torch.ones(4, 5)
    assert int((prune_magnitude(w, 0.5) == 0).sum()) == 10


def test_structured_pruning_keeps_the_largest_norm_columns_and_rows() -> None:
    w = torch.tensor([[1.0, 0.1, 3.0, -0.2], [1.0, 0.1, 3.0, 0.3]])  # column norms 1.41, 0.14, 4.24, 0.36
    assert prune_structured(w, 0.5, dim=1).tolist() == [0, 2]
    assert prune_structured(w, 0.25, dim=1).tolist() == [0, 2, 3]
    assert prune_structured(w, 0.5, dim=0).tolist() == [1]  # rows: norms 3.18 < 3.18+ (0.3 > -0.2 in abs)
    assert prune_structured(w, 0.99, dim=1).tolist() == [2]  # at least one slice is kept


def test_int8_rows_error_is_at_most_half_a_step() -> None:
    w = torch.randn(50, 16, generator=torch.Generator().manual_seed(2))
    q, s = int8_rows(w)
    assert q.dtype == torch.int8 and s.shape == (50, 1)
    err = (q.float() * s - w).abs()
    assert bool((err <= s * 0.5 + 1e-6).all())  # half a step (the clamped edge included)
    # symmetric per row: scale = max|w| / 127.5, so the row's largest |w| lands on the int8 edge
    assert torch.allclose(w.abs().amax(1, keepdim=True) / s, torch.full((50, 1), 127.5))
    assert float(q.float().abs().amax(1).min()) >= 127


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.user = nn.Embedding(12, 8)
        self.item = nn.Embedding(20, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 8))
        self.norm = nn.LayerNorm(8)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.norm(self.mlp(self.user.weight[u])) @ self.item.weight.T


def _toy() -> _Toy:
    torch.manual_seed(3)
    m = _Toy()
    m.eval()
    return m


def test_compressible_layers_are_tables_and_plain_linears() -> None:
    tables, linears = compressible_layers(_toy())
    assert set(tables) == {"user.weight", "item.weight"}
    assert set(linears) == {"mlp.0.weight", "mlp.2.weight"}


@pytest.mark.parametrize(
    ("method", "tol"),
    [("fp16", 5e-3), ("bf16", 5e-2), ("int8", 1e-1), ("onnx", 0.0)],
)
def test_encode_restore_scores_close(method: str, tol: float) -> None:
    m = _toy()
    u = torch.arange(12)
    with torch.no_grad():
        ref = m(u)
        stored = encode(m, parse_method(method), "weight_only")
        fresh = _Toy()
        restore(fresh, stored)
        got = fresh(u)
    assert float((got - ref).abs().max()) <= tol * float(ref.abs().max())
    if method in ("fp16", "bf16", "int8"):
        assert fresh.user.parametrizations.weight.original0.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.int8}[method]


def test_int8_dynamic_linear_holds_the_stored_values() -> None:
    m = _toy()
    stored = encode(m, parse_method("int8"), "dynamic")
    fresh = _Toy()
    restore(fresh, stored)
    w = fresh.mlp[0].weight
    assert torch.equal(w.qdata, stored["mlp.0.weight.q8dyn"])
    with torch.no_grad():
        assert float((fresh(torch.arange(12)) - m(torch.arange(12))).abs().max()) < 0.1 * float(m(torch.arange(12)).abs().max())


def test_structured_restore_zeroes_whole_dimensions_and_neurons() -> None:
    m = _toy()
    stored = encode(m, parse_method("prune-structured:0.25"), "weight_only")
    assert stored["user.weight.kept"].shape == (12, 6)  # 2 of 8 dims dropped
    assert stored["mlp.0.weight.kept"].shape == (6 - round(6 * 0.25), 8)  # round(1.5) = 2 neurons dropped
    fresh = _Toy()
    restore(fresh, stored)
    zero_cols = (fresh.user.weight == 0).all(0)
    assert int(zero_cols.sum()) == 2
    dropped_rows = (fresh.mlp[0].weight == 0).all(1)
    assert int(dropped_rows.sum()) == round(6 * 0.25)
    assert bool((fresh.mlp[0].bias[dropped_rows] == 0).all())  # a dropped neuron outputs 0
    kept = ~zero_cols
    assert torch.equal(fresh.user.weight[:, kept], m.user.weight[:, kept])


def test_restore_refuses_foreign_or_incomplete_state() -> None:
    stored = encode(_toy(), parse_method("int8"), "weight_only")
    with pytest.raises(ModelStateError, match="not a parameter"):
        restore(_Toy(), {**stored, "ghost.weight": torch.zeros(2)})
    partial = {k: v for k, v in stored.items() if not k.startswith("item.")}
    with pytest.raises(ModelStateError, match="lacks the model tensors item.weight"):
        restore(_Toy(), partial)
    bad = {**stored, "user.weight.q8": torch.zeros(3, 8, dtype=torch.int8)}
    with pytest.raises(ModelStateError, match="shape"):
        restore(_Toy(), bad)
