"""DP-SGD: the reported epsilon is opacus' accountant's for the settings; the model is usable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opacus")

from opacus.accountants.analysis import rdp as rdp_analysis  # noqa: E402

from fusionrec.errors import ConfigError  # noqa: E402
from fusionrec.models.base import load_model  # noqa: E402
from fusionrec.models.classic.bpr import BPR  # noqa: E402
from fusionrec.models.neural.two_tower import TwoTower  # noqa: E402
from fusionrec.privacy.dp import DPConfig, epsilon_for, fit_private  # noqa: E402
from fusionrec.testing.toy import checkerboard  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    return checkerboard()[0]


def _rdp_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """Epsilon straight from opacus' RDP analysis (the accountant's own formulas, default orders)."""
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    rdp = rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    eps, _ = rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
    return float(eps)


def test_epsilon_matches_accountant_fixed_sigma(toy, tmp_path: Path) -> None:
    dp = DPConfig(noise_multiplier=1.3, batch_size=8, epochs=3, delta=1e-4)
    model = BPR(embedding_dim=4)
    rep = fit_private(model, toy, dp, seed=1)
    q = 8 / toy.n_interactions
    steps = round(1 / q) * 3
    assert rep.sample_rate == pytest.approx(q) and rep.steps == steps
    assert rep.epsilon == pytest.approx(_rdp_epsilon(1.3, q, steps, 1e-4), rel=1e-9)
    assert rep.epsilon == pytest.approx(epsilon_for(1.3, q, steps, 1e-4), rel=1e-9)
    scores = model.score_indices(np.arange(toy.n_users))
    assert np.isfinite(scores).all()
    back = load_model(model.save(tmp_path / "m"))
    np.testing.assert_allclose(back.score_indices(np.arange(toy.n_users)), scores, rtol=1e-6)


def test_target_epsilon_is_met(toy) -> None:
    rep = fit_private(TwoTower(loss="sampled", num_negatives=4, embedding_dim=4, out_dim=4, hidden_dims=(8,)), toy,
                      DPConfig(target_epsilon=2.0, batch_size=8, epochs=2), seed=0)
    assert rep.noise_multiplier > 0
    assert rep.epsilon <= 2.0 + 0.02  # opacus' search tolerance (epsilon_tolerance=0.01)
    assert rep.epsilon == pytest.approx(_rdp_epsilon(rep.noise_multiplier, rep.sample_rate, rep.steps, rep.delta), rel=1e-9)


def test_no_privacy_reference_and_refusals(toy) -> None:
    rep = fit_private(BPR(embedding_dim=4), toy, DPConfig(target_epsilon=math.inf, batch_size=8, epochs=1))
    assert rep.epsilon == math.inf and rep.noise_multiplier == 0.0
    with pytest.raises(ConfigError, match="in-batch"):
        fit_private(TwoTower(), toy, DPConfig())
    with pytest.raises(ConfigError, match="exceeds"):
        fit_private(BPR(), toy, DPConfig(batch_size=10_000))


def test_rows_clipping_equals_dense_per_example_clipping() -> None:
    """The sparse per-row path gives the same clipped gradient sum as dense per-example
    gradients (torch.func) clipped one by one, including an example whose positive and
    negative are the same item (its two rows are summed before the norm)."""
    import torch

    from fusionrec.models.classic.bpr import BPRModule
    from fusionrec.privacy.dp import _clipped_sum, _LossOf, _row_grads

    torch.manual_seed(0)
    m = BPRModule(5, 6, 3, reg_weight=0.0)
    m.closed_form = False  # the plain nn.Embedding lookups (fit_private switches them on too)
    with torch.no_grad():
        m.user.weight.mul_(3.0)
        m.item.weight.mul_(3.0)
    batch = {"user": torch.tensor([0, 1, 1, 4]), "pos": torch.tensor([2, 3, 5, 0]), "neg": torch.tensor([[1], [3], [0], [2]])}
    wrapped = _LossOf(m)
    clip = 0.5
    sums, norms = _clipped_sum(_row_grads(wrapped, m, batch), clip)
    params = dict(wrapped.named_parameters())

    def one(p, ex):
        return torch.func.functional_call(wrapped, p, ({k: v.unsqueeze(0) for k, v in ex.items()},))

    dense = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0))({k: v.detach() for k, v in params.items()}, batch)
    flat = torch.cat([dense[k].flatten(1) for k in ("m.user.weight", "m.item.weight")], 1)
    want_norm = flat.norm(dim=1)
    torch.testing.assert_close(norms, want_norm, rtol=1e-5, atol=1e-6)
    f = (clip / (want_norm + 1e-6)).clamp(max=1.0)
    for name, mod in (("m.user.weight", m.user), ("m.item.weight", m.item)):
        want = (dense[name] * f[:, None, None]).sum(0)
        got = torch.zeros_like(mod.weight).index_add_(0, *sums[id(mod.weight)])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_rows_and_vmap_paths_report_the_same_budget(toy) -> None:
    a = fit_private(BPR(embedding_dim=4), toy, DPConfig(target_epsilon=3.0, batch_size=8, epochs=2, per_example="rows"), seed=0)
    b = fit_private(BPR(embedding_dim=4), toy, DPConfig(target_epsilon=3.0, batch_size=8, epochs=2, per_example="vmap"), seed=0)
    assert a.epsilon == pytest.approx(b.epsilon, rel=1e-9) and a.epsilon <= 3.02
    assert a.epsilon == pytest.approx(_rdp_epsilon(a.noise_multiplier, a.sample_rate, a.steps, a.delta), rel=1e-9)
    with pytest.raises(ConfigError, match="embedding tables"):
        fit_private(TwoTower(loss="sampled", num_negatives=4, embedding_dim=4, out_dim=4, hidden_dims=(8,)), toy,
                    DPConfig(per_example="rows", batch_size=8, epochs=1))
