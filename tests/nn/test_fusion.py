"""ModalityFusion: shapes, masks, gate weights in [0, 1], cold rows use the modality only."""

from __future__ import annotations

import pytest
import torch

from fusionrec.nn.fusion import FUSION_KINDS, ModalityFusion


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_shapes_and_missing_rows(kind):
    torch.manual_seed(0)
    f = ModalityFusion(kind, 8, {"text": 5, "image": 3}, 6).eval()
    ids, text, img = torch.randn(4, 8), torch.randn(4, 5), torch.randn(4, 3)
    img[1] = float("nan")  # NaN row = missing
    out = f(ids, {"text": text, "image": img}, {"id": torch.tensor([True, True, False, False])})
    assert out.shape == (4, 6) and torch.isfinite(out).all()
    # nothing present -> zeros
    none = f(
        ids,
        {"text": text, "image": img * float("nan")},
        {"id": torch.zeros(4, dtype=torch.bool), "text": torch.zeros(4, dtype=torch.bool)},
    )
    assert torch.equal(none, torch.zeros(4, 6))


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_cold_rows_depend_on_the_modality_only(kind):
    torch.manual_seed(1)
    f = ModalityFusion(kind, 4, {"text": 5}, 4).eval()
    text = torch.randn(3, 5)
    cold = torch.zeros(3, dtype=torch.bool)
    a = f(torch.randn(3, 4), {"text": text}, {"id": cold})
    b = f(torch.randn(3, 4) * 100, {"text": text}, {"id": cold})
    torch.testing.assert_close(a, b)  # the ID part is ignored for cold rows


def test_gate_weights_are_in_unit_interval_and_sum_to_one():
    torch.manual_seed(2)
    f = ModalityFusion("gate", 4, {"text": 5}, 4).eval()
    f(
        torch.randn(6, 4),
        {"text": torch.randn(6, 5)},
        {"id": torch.tensor([1, 1, 1, 0, 0, 1], dtype=torch.bool)},
    )
    w = f.last_weights
    assert w.shape == (6, 2, 4)
    assert (w >= 0).all() and (w <= 1).all()
    torch.testing.assert_close(w.sum(1), torch.ones(6, 4))
    assert torch.equal(w[3, 0], torch.zeros(4)) and torch.equal(
        w[3, 1], torch.ones(4)
    )  # cold: text only


def test_add_with_identity_id_projection_is_a_sum():
    f = ModalityFusion("add", 3, {"t": 2}, 3)
    with torch.no_grad():
        f.projs["t"].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1]]))
        f.projs["t"].bias.zero_()
    out = f(torch.tensor([[1.0, 2, 3]]), {"t": torch.tensor([[10.0, 20]])})
    torch.testing.assert_close(out, torch.tensor([[11.0, 22, 33]]))


def test_bad_inputs_are_named():
    f = ModalityFusion("concat", 4, {"text": 5}, 4)
    with pytest.raises(ValueError, match="'text' has shape"):
        f(torch.randn(2, 4), {"text": torch.randn(2, 6)})
    with pytest.raises(ValueError, match="unknown fusion kind"):
        ModalityFusion("mean", 4, {"text": 5}, 4)
