"""Linear contextual policies: LinUCB (shared, disjoint and hybrid; Li et al. 2010) and
linear Thompson sampling (Agrawal & Goyal 2013), vectorised over the candidates."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from fusionrec.bandits import _choice
from fusionrec.bandits._ridge import ArmRidge, SharedRidge
from fusionrec.bandits.base import (
    BanditInputError,
    Decision,
    Policy,
    PolicyConfig,
    as_generator,
    register_policy,
)

__all__ = ["LinUCB", "LinTS", "LinUCBConfig", "LinTSConfig"]


class _LinearConfig(PolicyConfig):
    dim: int = Field(ge=1)
    """Context width (for ``hybrid``: shared columns first, then the arm's own)."""
    mode: Literal["shared", "disjoint", "hybrid"] = "shared"
    """``shared``: one parameter vector for every arm; ``disjoint``: one per arm id;
    ``hybrid``: shared weights on the first ``shared_dim`` columns plus per-arm weights on the rest."""
    n_arms: int | None = Field(None, ge=1)
    """Number of arm ids (``disjoint`` and ``hybrid``)."""
    shared_dim: int = Field(0, ge=0)
    """Width of the shared part of the context (``hybrid``)."""
    reg: float = Field(1.0, gt=0)
    """Ridge penalty (the prior precision)."""

    @model_validator(mode="after")
    def _modes(self):
        if self.mode in ("disjoint", "hybrid") and self.n_arms is None:
            raise ValueError(f"mode={self.mode!r} needs n_arms")
        if self.mode == "hybrid" and not 0 < self.shared_dim < self.dim:
            raise ValueError(f"mode='hybrid' needs 0 < shared_dim < dim, got shared_dim={self.shared_dim}, dim={self.dim}")
        if self.mode != "hybrid" and self.shared_dim:
            raise ValueError("shared_dim is only used with mode='hybrid'")
        return self


class LinUCBConfig(_LinearConfig):
    alpha: float = Field(1.0, ge=0)
    """Width of the confidence bonus: index = x^T theta + alpha * sqrt(x^T A^-1 x)."""


class LinTSConfig(_LinearConfig):
    mode: Literal["shared", "disjoint"] = "shared"
    """``shared``: one parameter vector for every arm; ``disjoint``: one per arm id."""
    v: float = Field(0.3, gt=0)
    """Posterior scale: theta ~ N(A^-1 b, v^2 A^-1)."""
    n_propensity_samples: int = Field(100, ge=0)
    """Extra posterior draws that estimate each decision's propensity."""


class _Linear(Policy):
    contextual = True
    config: _LinearConfig

    def _init_state(self) -> None:
        c = self.config
        self.uses_arm_ids = c.mode != "shared"
        if c.mode == "shared":
            self.shared = SharedRidge(c.dim, c.reg)
        elif c.mode == "disjoint":
            self.arm = ArmRidge(c.n_arms, c.dim, c.reg)
        else:
            self._init_hybrid()

    def _init_hybrid(self) -> None:
        c = self.config
        k, d = c.shared_dim, c.dim - c.shared_dim
        self.A0 = c.reg * np.eye(k)
        self.b0 = np.zeros(k)
        self.arm = ArmRidge(c.n_arms, d, c.reg)
        self.B = np.zeros((c.n_arms, d, k))
        self._A0_inv: np.ndarray | None = None

    @property
    def theta(self) -> np.ndarray:
        """The shared parameter vector (``shared`` mode: A^-1 b; ``hybrid``: beta)."""
        if self.config.mode == "shared":
            return self.shared.theta
        if self.config.mode == "hybrid":
            return self._hybrid_inv() @ self.b0
        raise BanditInputError("a disjoint policy has one theta per arm: see .arm.theta(arms)")

    def _hybrid_inv(self) -> np.ndarray:
        if self._A0_inv is None:
            self._A0_inv = np.linalg.inv(self.A0)
        return self._A0_inv

    def _update(self, arms, contexts, rewards) -> None:
        mode = self.config.mode
        if mode == "shared":
            self.shared.update(contexts, rewards)
        elif mode == "disjoint":
            self.arm.update(arms, contexts, rewards)
        else:
            self._hybrid_update(arms, contexts, rewards)

    def _hybrid_update(self, arms, contexts, rewards) -> None:
        # Li et al. (2010), Algorithm 2, one observation at a time.
        k = self.config.shared_dim
        for a, row, r in zip(arms.tolist(), contexts, rewards, strict=True):
            z, x = row[:k], row[k:]
            Ai, B, b = self.arm.A_inv[a], self.B[a], self.arm.b[a]
            self.A0 += B.T @ Ai @ B
            self.b0 += B.T @ Ai @ b
            self.arm.update(np.array([a]), x[None, :], np.array([r]))
            self.B[a] += np.outer(x, z)
            Ai, B, b = self.arm.A_inv[a], self.B[a], self.arm.b[a]
            self.A0 += np.outer(z, z) - B.T @ Ai @ B
            self.b0 += r * z - B.T @ Ai @ b
            self._A0_inv = None

    def _hybrid_mean_var(self, arms: np.ndarray, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.config.shared_dim
        Z, X = contexts[:, :k], contexts[:, k:]
        A0i = self._hybrid_inv()
        beta = A0i @ self.b0
        Ai, B, b = self.arm.A_inv[arms], self.B[arms], self.arm.b[arms]
        theta = np.einsum("nde,ne->nd", Ai, b - np.einsum("ndk,k->nd", B, beta))
        AiX = np.einsum("nde,ne->nd", Ai, X)  # A_a^-1 x
        BtAiX = np.einsum("ndk,nd->nk", B, AiX)  # B_a^T A_a^-1 x
        s = (
            np.einsum("nk,kl,nl->n", Z, A0i, Z)
            - 2.0 * np.einsum("nk,kl,nl->n", Z, A0i, BtAiX)
            + np.einsum("nd,nd->n", X, AiX)
            + np.einsum("nk,kl,nl->n", BtAiX, A0i, BtAiX)
        )
        return Z @ beta + np.einsum("nd,nd->n", X, theta), np.maximum(s, 0.0)

    def _get_state(self) -> dict[str, np.ndarray]:
        mode = self.config.mode
        if mode == "shared":
            return self.shared.get_state("")
        if mode == "disjoint":
            return self.arm.get_state("arm_")
        return {**self.arm.get_state("arm_"), "B": self.B, "A0": self.A0, "b0": self.b0}

    def _set_state(self, state) -> None:
        mode = self.config.mode
        try:
            if mode == "shared":
                self.shared.set_state(state, "")
            elif mode == "disjoint":
                self.arm.set_state(state, "arm_")
            else:
                self.arm.set_state(state, "arm_")
                self.B = np.asarray(state["B"], np.float64).copy()
                self.A0 = np.asarray(state["A0"], np.float64).copy()
                self.b0 = np.asarray(state["b0"], np.float64).copy()
                self._A0_inv = None
        except (KeyError, ValueError) as e:
            raise BanditInputError(f"saved state does not fit policy {self.name!r} ({self.config.mode}): {e}") from None


@register_policy("linucb")
class LinUCB(_Linear):
    """LinUCB: the candidate with the highest upper confidence bound of a ridge estimate."""

    Config = LinUCBConfig
    config: LinUCBConfig

    def index(self, arms: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        mode, alpha = self.config.mode, self.config.alpha
        if mode == "shared":
            return self.shared.mean(contexts) + alpha * self.shared.width(contexts)
        if mode == "disjoint":
            return self.arm.mean(arms, contexts) + alpha * self.arm.width(arms, contexts)
        mean, var = self._hybrid_mean_var(arms, contexts)
        return mean + alpha * np.sqrt(var)

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.argmax_slate(arms, self.index(arms, contexts), k)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        p = np.zeros(len(arms))
        p[int(np.argmax(self.index(arms, contexts)))] = 1.0
        return p


@register_policy("lints")
class LinTS(_Linear):
    """Linear Thompson sampling: act greedily on a draw from the Gaussian posterior."""

    Config = LinTSConfig
    config: LinTSConfig

    def draws(self, arms: np.ndarray, contexts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` posterior draws of every candidate's score, shape (n, len(arms))."""
        if self.config.mode == "shared":
            return self.shared.sample_thetas(self.config.v, n, rng) @ contexts.T
        return self.arm.sample_scores(arms, contexts, self.config.v, n, rng)

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.draws_slate(arms, self.draws(arms, contexts, 1 + self.config.n_propensity_samples, rng), k)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        n = max(self.config.n_propensity_samples, 1)
        return _choice.draws_probabilities(self.draws(arms, contexts, n, as_generator(rng)))
