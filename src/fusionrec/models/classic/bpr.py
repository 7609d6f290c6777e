"""BPR-MF (Rendle et al. 2009): matrix factorisation trained with the pairwise BPR loss.

Each training interaction (u, i) is paired with ``num_negatives`` items drawn uniformly among
the items u has not interacted with; the loss is ``-log σ(x_ui - x_uj)`` averaged over pairs,
plus an optional L2 penalty on the embeddings of the batch (``reg_weight``). Batches are made
vectorised: one permutation and one negative draw per epoch, then slices.

Speed (benchmarks/throughput.py, docs/scale.md): the loss and its gradient are written out in
closed form (:class:`_BPRRows`, one autograd node instead of three embedding lookups and their
sort-based backward: the same numbers to float rounding). With ``optimizer: sgd`` the tables
get row gradients and :class:`~fusionrec.training.row_sgd.RowSGD` updates only the batch's rows
(the dense SGD step, without paying for the whole table each step; the update ``implicit``'s
BPR makes). Negatives are drawn for the interactions in user order, then shuffled with them:
the positive-set lookup then walks the sorted keys forward (13x faster at 25M interactions than
in shuffled order).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Capabilities
from fusionrec.models.negatives import advance_epoch, negative_sampler
from fusionrec.models.registry import register
from fusionrec.models.torch_base import TorchRecommender
from fusionrec.training.config import TrainConfig
from fusionrec.training.curriculum import CurriculumSettings
from fusionrec.training.row_adam import RowAdam
from fusionrec.training.row_sgd import RowSGD, row_grad

__all__ = ["BPR", "BPRConfig", "BPRModule"]


class BPRConfig(TrainConfig, CurriculumSettings):
    """BPR-MF settings; the training fields are the shared Trainer's, with defaults tuned for
    MovieLens-100k (RS 8:1:1, seed 2020): NDCG@10 0.2925 in about 13 s on one CPU thread."""

    _aliases: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim"}
    """Deprecated parameter names (see ``fusionrec.config.vocabulary``)."""

    embedding_dim: int = Field(64, ge=1)
    """Dimension of the user and item embeddings (was ``embedding_size``)."""
    reg_weight: float = Field(1e-2, ge=0)
    """L2 penalty on the batch's user/positive/negative embeddings (per example)."""
    epochs: int = Field(200, ge=1)
    """Maximum number of passes over the training interactions."""
    batch_size: int = Field(4096, ge=1)
    """Positive interactions per optimisation step."""
    lr: float = Field(5e-3, gt=0)
    """Learning rate."""
    patience: int = Field(10, ge=0)
    """Evaluations without improvement before stopping (0 = never stop early)."""
    weight_decay: float = Field(0.0, ge=0)
    """Decoupled (adamw) or L2 (adam, sgd) weight decay on all embeddings."""
    adv_eps: float = Field(0.0, ge=0)
    """APR (He et al. 2018): L2 size of the adversarial perturbation of each batch embedding
    (0 = plain BPR). The worst-case direction is the loss gradient, row-normalised (FGSM)."""
    adv_weight: float = Field(1.0, ge=0)
    """APR: weight of the BPR loss under the adversarial perturbation (used when adv_eps > 0)."""
    sparse_rows: bool = True
    """With ``optimizer: sgd`` (or ``adam``, see ``adam_rows``; no weight decay, no gradient
    clipping, no amp, one process): update only the rows of the batch's users and items (:class:`~fusionrec.training.row_sgd.
    RowSGD`), the same step as dense SGD at a cost independent of the table sizes. The loss is
    the batch mean, so each interaction moves its rows by ``lr / batch_size`` times its gradient
    (``implicit``'s per-sample ``learning_rate=0.01`` at batch 4096 is ``lr`` 41)."""
    adam_rows: Literal["auto", "lazy", "dense"] = "auto"
    """With ``optimizer: adam`` and ``sparse_rows``: ``lazy`` steps only the batch's rows
    (:class:`~fusionrec.training.row_adam.RowAdam`, torch.optim.SparseAdam's semantics: rows
    outside the batch keep their weights and moments); ``dense`` is torch's fused Adam over both
    whole tables; ``auto`` takes ``lazy`` when the item table has more than 4x the item rows a
    batch reads (``batch_size x (1 + num_negatives)``), where it measured faster, else ``dense``.
    On MovieLens-100k both give test NDCG@10 0.291 (docs/scale.md)."""
    fused_optimizer: bool = True
    """torch's fused (single-kernel) optimiser step (the shared setting, on for BPR): the step
    updates both whole embedding tables, which dominates at 100k users x 30k items (measured
    3.4x more samples/s there; results agree with the unfused step to float rounding)."""


class BPRModule(torch.nn.Module):
    """User and item embedding tables; the score is their dot product."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        reg_weight: float,
        adv_eps: float = 0.0,
        adv_weight: float = 1.0,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.user = torch.nn.Embedding(n_users, dim, sparse=sparse)
        self.item = torch.nn.Embedding(n_items, dim, sparse=sparse)
        self.reg_weight = reg_weight
        self.adv_eps = adv_eps
        self.adv_weight = adv_weight
        self.sparse = sparse
        """Row (sparse COO) gradients, stepped by :class:`RowSGD` (see ``make_optimizer``)."""
        self.closed_form = True
        """Loss and gradient through :class:`_BPRRows` (False: torch autograd over the lookups;
        APR and autocast always take that path)."""

    def make_optimizer(self, config: TrainConfig, params: list) -> torch.optim.Optimizer | None:
        """The Trainer's hook: for row gradients :class:`RowSGD` (``optimizer: sgd``) or the lazy
        :class:`RowAdam` (``adam``), else None (the configured one)."""
        if not self.sparse:
            return None
        return RowAdam(params, lr=config.lr) if getattr(config, "optimizer", "sgd") == "adam" else RowSGD(params, lr=config.lr)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | torch.Tensor:
        dev = self.user.weight.device.type
        if self.closed_form and not (self.adv_eps > 0 and self.adv_weight > 0) and not torch.is_autocast_enabled(dev):
            bpr, reg = _BPRRows.apply(
                self.user.weight, self.item.weight, batch["user"], batch["pos"], batch["neg"], self.reg_weight, self.sparse
            )
            return {"bpr": bpr, "reg": reg} if self.reg_weight > 0 else bpr
        u = self.user(batch["user"])  # (B, d)
        p = self.item(batch["pos"])  # (B, d)
        n = self.item(batch["neg"])  # (B, n_neg, d)
        pos = (u * p).sum(-1, keepdim=True)
        neg = torch.einsum("bd,bnd->bn", u, n)
        bpr = -F.logsigmoid(pos - neg).mean()
        out: dict[str, torch.Tensor] = {"bpr": bpr}
        if self.adv_eps > 0 and self.adv_weight > 0 and torch.is_grad_enabled():
            out["adv"] = self.adv_weight * _apr_loss(bpr, u, p, n, self.adv_eps)
        if self.reg_weight > 0:
            out["reg"] = self.reg_weight * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / u.shape[0]
        return out if len(out) > 1 else bpr


class _BPRRows(torch.autograd.Function):
    """BPR loss and L2 term of a batch straight from the two tables, with the gradient in closed
    form: x_k = <u, p> - <u, n_k>, loss = mean(-log σ(x)), reg = λ (|u|² + |p|² + Σ|n_k|²) / B.
    d loss / d x_k = -σ(-x_k) / (B K); the table gradients are the rows' sums (``row_grad``)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        users_w: torch.Tensor,
        items_w: torch.Tensor,
        u_idx: torch.Tensor,
        p_idx: torch.Tensor,
        n_idx: torch.Tensor,
        reg: float,
        sparse: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, k = n_idx.shape
        u = users_w.index_select(0, u_idx)  # (B, d)
        # positives' and negatives' rows in one gather (their indices reused for the gradient)
        pn_idx = torch.cat([p_idx, n_idx.reshape(-1)])
        pn = items_w.index_select(0, pn_idx)  # (B + B K, d)
        p, n = pn[:b], pn[b:].view(b, k, -1)
        # elementwise products, not bmm (bmm of d x 1 matrices is several times slower on CPU);
        # one negative (the default): x = <u, p - n>, p - n kept for the gradient of u
        diff = p - n[:, 0] if k == 1 else None
        x = (u * diff).sum(-1, keepdim=True) if diff is not None else (u * p).sum(-1, keepdim=True) - (n * u.unsqueeze(1)).sum(-1)
        bpr = -F.logsigmoid(x).mean()
        if reg > 0:
            flat_u, flat_pn = u.reshape(-1), pn.reshape(-1)
            l2 = (torch.dot(flat_u, flat_u) + torch.dot(flat_pn, flat_pn)) * (reg / b)
        else:
            l2 = x.new_zeros(())
        ctx.save_for_backward(u, pn, x, u_idx, pn_idx, diff)
        ctx.reg, ctx.sparse, ctx.shapes = reg, sparse, (users_w.shape, items_w.shape)
        return bpr, l2

    @staticmethod
    def backward(ctx: Any, g_bpr: torch.Tensor, g_reg: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        # few passes over (B, d) arrays: fused multiply-adds, the item rows written in place
        u, pn, x, u_idx, pn_idx, diff = ctx.saved_tensors
        b, k = x.shape
        d = u.shape[1]
        p, n = pn[:b], pn[b:].view(b, k, d)
        w = torch.sigmoid(-x).mul_(-g_bpr / (b * k))  # d loss / d x, (B, K)
        c = g_reg * (2 * ctx.reg / b) if ctx.reg > 0 else None  # d reg / d row = c * row
        g_item_rows = u.new_empty((b * (1 + k), d))  # positives' rows, then the negatives'
        if k == 1:
            n0 = n[:, 0]
            if c is None:
                gu = w * diff
                torch.mul(w, u, out=g_item_rows[:b])
                torch.mul(w, u, out=g_item_rows[b:]).neg_()
            else:
                gu = torch.addcmul(u * c, w, diff)
                torch.addcmul(p * c, w, u, out=g_item_rows[:b])
                torch.addcmul(n0 * c, w, u, value=-1, out=g_item_rows[b:])
        else:
            ws = w.sum(1, keepdim=True)  # (B, 1)
            gu = ws * p - (w.unsqueeze(2) * n).sum(1)
            gn = -w.unsqueeze(2) * u.unsqueeze(1)  # (B, K, d)
            g_item_rows[:b] = ws * u
            if c is not None:
                gu.add_(c * u)
                g_item_rows[:b] += c * p
                gn.add_(c * n)
            g_item_rows[b:] = gn.reshape(-1, d)
        g_users = row_grad(ctx.shapes[0], u_idx, gu, ctx.sparse)
        g_items = row_grad(ctx.shapes[1], pn_idx, g_item_rows, ctx.sparse)
        return g_users, g_items, None, None, None, None, None


def _apr_loss(bpr: torch.Tensor, u: torch.Tensor, p: torch.Tensor, n: torch.Tensor, eps: float) -> torch.Tensor:
    """APR's adversarial term: the BPR loss with each embedding moved by ``eps`` along its own
    (row-normalised) loss gradient, the perturbation held constant (He et al. 2018, eq. 9)."""
    gu, gp, gn = torch.autograd.grad(bpr, (u, p, n), retain_graph=True)
    du, dp_, dn = (eps * F.normalize(g.detach(), dim=-1) for g in (gu, gp, gn))
    ua, pa, na = u + du, p + dp_, n + dn
    return -F.logsigmoid((ua * pa).sum(-1, keepdim=True) - torch.einsum("bd,bnd->bn", ua, na)).mean()


@register("bpr")
class BPR(TorchRecommender):
    """BPR-MF: user/item embeddings trained with the pairwise BPR loss and uniform negatives."""

    Config = BPRConfig
    capabilities = Capabilities(gpu=True)

    def _prepare(self, dataset: Dataset, rng: np.random.Generator) -> None:
        m = dataset.matrix("csr")
        self._users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        self._items = m.indices.astype(np.int64)
        self._sampler = negative_sampler(self, dataset, rng)

    def build_module(self) -> torch.nn.Module:
        c = self.config
        return BPRModule(
            self.n_users, self.n_items, c.embedding_dim, c.reg_weight, c.adv_eps, c.adv_weight, sparse=self._row_sparse()
        )

    def _row_sparse(self) -> bool:
        """Whether this fit steps only the batch's rows (see ``BPRConfig.sparse_rows``)."""
        c = self.config
        plain = c.optimizer in ("sgd", "adam") and c.weight_decay == 0 and c.clip_grad_norm is None and c.amp == "none"
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if c.optimizer == "adam":
            lazy = c.adam_rows == "lazy" or (
                c.adam_rows == "auto" and self.n_items > 4 * c.batch_size * (1 + c.num_negatives)
            )
            plain = plain and lazy
        return c.sparse_rows and plain and not distributed

    def batches(self, dataset: Dataset, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        advance_epoch(self, self._sampler)
        order = rng.permutation(len(self._users))
        # negatives drawn in user order (the sampler's positive lookup then walks its sorted keys
        # forward), shuffled with their interactions
        negs = self._sampler.sample(self._users, self.config.num_negatives, rng)[order]
        users, items = self._users[order], self._items[order]
        dev = self.device_
        u_t, i_t, n_t = (torch.from_numpy(a).to(dev) for a in (users, items, negs))
        bs = self.config.batch_size
        for s in range(0, len(users), bs):
            yield {"user": u_t[s : s + bs], "pos": i_t[s : s + bs], "neg": n_t[s : s + bs]}

    def score_tensor(self, users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        u = self.module_.user.weight[users]
        it = self.module_.item.weight if items is None else self.module_.item.weight[items]
        return u @ it.T

    def item_vectors(self) -> np.ndarray:
        """The item embedding matrix (n_items, embedding_dim)."""
        self._require_fitted()
        return self.module_.item.weight.detach().float().cpu().numpy()

    def user_vectors(self) -> np.ndarray:
        """The user embedding matrix (n_users, embedding_dim): ``score = user_vectors() @ item_vectors().T``."""
        self._require_fitted()
        return self.module_.user.weight.detach().float().cpu().numpy()
