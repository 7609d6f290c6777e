"""Trainer features: resume, gradient accumulation, clipping, LR schedules, AMP, run-folder logs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.training import TrainConfig, Trainer, lr_factor


class _Linear(torch.nn.Module):
    def __init__(self, d: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(d, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.5, -0.25, 0.1]]))
            self.lin.bias.fill_(0.2)
        self.seen_dtypes: list[torch.dtype] = []

    def loss(self, batch):
        pred = self.lin(batch["x"]).squeeze(-1)
        self.seen_dtypes.append(pred.dtype)
        return ((pred.float() - batch["y"]) ** 2).mean()


class _Toy:
    """A Trainable that is not a Recommender: fixed data in a fixed order."""

    name = "toy"

    def __init__(self, config: TrainConfig, n: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        self.config = config
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, 2.0, -1.0]) + 0.3
        self.module_ = _Linear()

    def batches(self, dataset, rng):
        bs = self.config.batch_size
        for s in range(0, len(self.x), bs):
            yield {"x": self.x[s : s + bs], "y": self.y[s : s + bs]}

    def score_indices(self, user_idx, item_idx=None):  # pragma: no cover - no validation here
        raise NotImplementedError


def _fit(**cfg) -> _Toy:
    toy = _Toy(TrainConfig(optimizer="sgd", **cfg))
    Trainer(toy.config).fit(toy, None, None, seed=0)
    return toy


def test_grad_accumulation_equals_bigger_batch():
    big = _fit(epochs=3, batch_size=8, lr=0.05)
    acc = _fit(epochs=3, batch_size=4, lr=0.05, grad_accum_steps=2)
    small = _fit(epochs=3, batch_size=4, lr=0.05)
    for a, b in zip(big.module_.parameters(), acc.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # and it is not trivially equal: plain small batches take twice as many steps
    assert not torch.allclose(big.module_.lin.weight, small.module_.lin.weight, atol=1e-4)


class _Sum(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def loss(self, batch):
        return 100.0 * self.w.sum()  # gradient (100, 100, 100), norm 173.2


def test_clipping_bounds_the_gradient_norm():
    toy = _Toy(TrainConfig(optimizer="sgd", lr=1.0, epochs=1, batch_size=16, clip_grad_norm=0.5))
    toy.module_ = _Sum()
    hist = Trainer(toy.config).fit(toy, None, None, seed=0)
    w = toy.module_.w.detach()
    # one SGD step of lr 1 moves the weights by exactly the clipped gradient
    assert float(w.norm()) == pytest.approx(0.5, rel=1e-5)
    torch.testing.assert_close(w, torch.full((3,), -0.5 / math.sqrt(3)))
    assert hist.records[0]["grad_norm"] == pytest.approx(100 * math.sqrt(3), rel=1e-5)


def test_no_clipping_by_default():
    toy = _Toy(TrainConfig(optimizer="sgd", lr=1.0, epochs=1, batch_size=16))
    toy.module_ = _Sum()
    Trainer(toy.config).fit(toy, None, None, seed=0)
    torch.testing.assert_close(toy.module_.w.detach(), torch.full((3,), -100.0))


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({"lr_schedule": "constant", "epochs": 4}, [1, 1, 1, 1]),
        (
            {"lr_schedule": "step", "epochs": 5, "lr_step_size": 2, "lr_gamma": 0.5},
            [1, 1, 0.5, 0.5, 0.25],
        ),
        (
            {"lr_schedule": "cosine", "epochs": 5},
            [1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 - math.cos(math.pi / 4)) / 2, 0],
        ),
        ({"lr_schedule": "cosine", "epochs": 3, "lr_min_ratio": 0.1}, [1, 0.55, 0.1]),
        (
            {"lr_schedule": "linear_warmup_cosine", "epochs": 6, "warmup_epochs": 2},
            [0.5, 1, 1, 0.75, 0.25, 0],
        ),
        ({"lr_schedule": "constant", "epochs": 4, "warmup_epochs": 4}, [0.25, 0.5, 0.75, 1]),
    ],
)
def test_schedule_values(cfg, expected):
    c = TrainConfig(**cfg)
    got = [lr_factor(c, e) for e in range(1, c.epochs + 1)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_trainer_applies_the_schedule():
    toy = _Toy(
        TrainConfig(
            optimizer="sgd",
            epochs=4,
            batch_size=8,
            lr=0.1,
            lr_schedule="step",
            lr_step_size=1,
            lr_gamma=0.5,
        )
    )
    hist = Trainer(toy.config).fit(toy, None, None, seed=0)
    assert [r["lr"] for r in hist.records] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_warmup_cosine_needs_warmup():
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(lr_schedule="linear_warmup_cosine")


def test_bf16_autocast_runs_on_cpu():
    toy = _fit(epochs=2, batch_size=8, lr=0.05, amp="bf16")
    assert set(toy.module_.seen_dtypes) == {torch.bfloat16}
    assert toy.module_.lin.weight.dtype == torch.float32
    ref = _fit(epochs=2, batch_size=8, lr=0.05)
    assert set(ref.module_.seen_dtypes) == {torch.float32}
    # bf16 is close to but not bit-equal with fp32 training
    torch.testing.assert_close(toy.module_.lin.weight, ref.module_.lin.weight, atol=5e-2, rtol=0)


def test_samples_per_second_recorded():
    toy = _Toy(TrainConfig(optimizer="sgd", epochs=2, batch_size=5))
    hist = Trainer(toy.config).fit(toy, None, None, seed=0)
    assert all(r["samples_per_s"] > 0 and r["seconds"] > 0 for r in hist.records)


def test_resume_needs_run_dir():
    with pytest.raises(ValueError, match="run_dir"):
        Trainer(TrainConfig(), resume=True)


# ----------------------------------------------------------------- run folder + resume
def _split_tiny(tiny):
    valid_mask = np.zeros(tiny.n_interactions, bool)
    valid_mask[[1, 6, 9]] = True  # one held-out item for users 0, 2 and 3
    return tiny.with_interactions(~valid_mask), tiny.with_interactions(valid_mask)


_RESUME_CFG = dict(
    epochs=6,
    batch_size=4,
    lr=0.01,
    lr_schedule="cosine",
    clip_grad_norm=5.0,
    embedding_dim=8,
    mlp_embedding_dim=8,
    hidden_dims=(16, 8),
    dropout=0.2,
    num_negatives=2,
    patience=0,
)


class _Crash(Exception):
    pass


def _crash_after(n: int):
    def cb(epoch: int, rec: dict) -> None:
        if epoch == n:
            raise _Crash

    return cb


def test_resume_after_crash_gives_identical_weights(tiny, tmp_path, guard_mutation):
    from fusionrec.models.neural.neumf import NeuMF

    guard_mutation(tiny)
    train, valid = _split_tiny(tiny)
    straight = NeuMF(**_RESUME_CFG).fit(train, valid, seed=7, run_dir=tmp_path / "a")

    run = tmp_path / "b"
    with pytest.raises(_Crash):
        NeuMF(**_RESUME_CFG).fit(train, valid, seed=7, run_dir=run, callbacks=[_crash_after(3)])
    state = __import__("json").loads((run / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 3
    resumed = NeuMF(**_RESUME_CFG).fit(train, valid, seed=7, run_dir=run, resume=True)

    a, b = straight.module_.state_dict(), resumed.module_.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    drop = ("seconds", "samples_per_s")
    strip = [{k: v for k, v in r.items() if k not in drop} for r in straight.history_.records]
    assert [
        {k: v for k, v in r.items() if k not in drop} for r in resumed.history_.records
    ] == strip
    assert resumed.history_.best_epoch == straight.history_.best_epoch
    # a plain restart (no resume) from the crashed folder is a fresh run and also matches
    fresh = NeuMF(**_RESUME_CFG).fit(train, valid, seed=7, run_dir=tmp_path / "c")
    assert torch.equal(fresh.module_.out.weight, straight.module_.out.weight)
    np.testing.assert_array_equal(
        resumed.score_indices(np.arange(6)), straight.score_indices(np.arange(6))
    )


def test_run_folder_has_log_csv_png_and_no_pickle(tiny, tmp_path):
    from fusionrec.models.neural.neumf import NeuMF

    train, valid = _split_tiny(tiny)
    cfg = {**_RESUME_CFG, "epochs": 3}
    NeuMF(**cfg).fit(train, valid, seed=1, run_dir=tmp_path)
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log["epoch"]) == [1, 2, 3]
    for col in ("loss", "valid_ndcg@10", "lr", "seconds", "samples_per_s", "grad_norm"):
        assert col in log.columns, col
    assert (log["samples_per_s"] > 0).all()
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    files = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert files == [
        "best.safetensors",
        "module.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "state.json",
    ]


def test_resume_of_a_finished_run_returns_its_best(tiny, tmp_path):
    from fusionrec.models.neural.neumf import NeuMF

    train, valid = _split_tiny(tiny)
    cfg = {**_RESUME_CFG, "epochs": 2}
    first = NeuMF(**cfg).fit(train, valid, seed=3, run_dir=tmp_path)
    again = NeuMF(**cfg).fit(train, valid, seed=3, run_dir=tmp_path, resume=True)
    assert len(again.history_.records) == 2
    assert torch.equal(first.module_.out.weight, again.module_.out.weight)


def test_fp16_uses_a_grad_scaler_saved_in_the_checkpoint(tmp_path):
    import json

    toy = _Toy(TrainConfig(optimizer="sgd", epochs=2, batch_size=8, lr=0.05, amp="fp16"))
    Trainer(toy.config, run_dir=tmp_path).fit(toy, None, None, seed=0)
    assert set(toy.module_.seen_dtypes) == {torch.float16}
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["scaler"]["scale"] > 0 and state["epoch"] == 2
    assert np.isfinite(toy.module_.lin.weight.detach().numpy()).all()
