"""Ridge-regression statistics behind the linear policies (shared and per-arm), vectorised.

``A = reg * I + sum x x^T`` and ``b = sum r x``; ``A^-1`` is kept up to date with the
Sherman-Morrison formula for single updates and recomputed exactly for batches and on load.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SharedRidge", "ArmRidge"]


class SharedRidge:
    """One ridge regression over all arms: ``theta = A^-1 b``."""

    def __init__(self, dim: int, reg: float) -> None:
        self.dim = dim
        self.reg = reg
        self.A = reg * np.eye(dim)
        self.b = np.zeros(dim)
        self.A_inv = np.eye(dim) / reg
        self._theta: np.ndarray | None = None

    @property
    def theta(self) -> np.ndarray:
        if self._theta is None:
            self._theta = self.A_inv @ self.b
        return self._theta

    def mean(self, X: np.ndarray) -> np.ndarray:
        return X @ self.theta

    def width(self, X: np.ndarray) -> np.ndarray:
        """``sqrt(x^T A^-1 x)`` per row."""
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", X, self.A_inv, X), 0.0))

    def update(self, X: np.ndarray, r: np.ndarray) -> None:
        self.A += X.T @ X
        self.b += X.T @ r
        if X.shape[0] == 1:
            x = X[0]
            Ax = self.A_inv @ x
            self.A_inv -= np.outer(Ax, Ax) / (1.0 + x @ Ax)
        else:
            self.A_inv = np.linalg.inv(self.A)
        self._theta = None

    def sample_thetas(self, v: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``theta ~ N(A^-1 b, v^2 A^-1)``, shape (n, dim)."""
        cov = 0.5 * (self.A_inv + self.A_inv.T)
        L = np.linalg.cholesky(cov + 1e-12 * np.eye(self.dim))
        z = rng.standard_normal((n, self.dim))
        return self.theta[None, :] + v * z @ L.T

    def get_state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}A": self.A, f"{prefix}b": self.b}

    def set_state(self, state: dict[str, np.ndarray], prefix: str) -> None:
        A, b = np.asarray(state[f"{prefix}A"], np.float64), np.asarray(state[f"{prefix}b"], np.float64)
        if A.shape != (self.dim, self.dim) or b.shape != (self.dim,):
            raise ValueError(f"state {prefix}A/{prefix}b has shapes {A.shape}/{b.shape}, expected dim {self.dim}")
        self.A, self.b = A.copy(), b.copy()
        self.A_inv = np.linalg.inv(self.A)
        self._theta = None


class ArmRidge:
    """One ridge regression per arm (disjoint LinUCB / LinTS): ``A[a]``, ``b[a]``."""

    def __init__(self, n_arms: int, dim: int, reg: float) -> None:
        self.n_arms, self.dim, self.reg = n_arms, dim, reg
        self.A = np.tile(reg * np.eye(dim), (n_arms, 1, 1))
        self.A_inv = np.tile(np.eye(dim) / reg, (n_arms, 1, 1))
        self.b = np.zeros((n_arms, dim))

    def theta(self, arms: np.ndarray) -> np.ndarray:
        return np.einsum("nde,ne->nd", self.A_inv[arms], self.b[arms])

    def mean(self, arms: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.einsum("nd,nd->n", X, self.theta(arms))

    def width(self, arms: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(np.einsum("nd,nde,ne->n", X, self.A_inv[arms], X), 0.0))

    def update(self, arms: np.ndarray, X: np.ndarray, r: np.ndarray) -> None:
        for a, x, y in zip(arms.tolist(), X, r, strict=True):
            self.A[a] += np.outer(x, x)
            self.b[a] += y * x
            Ax = self.A_inv[a] @ x
            self.A_inv[a] -= np.outer(Ax, Ax) / (1.0 + x @ Ax)

    def sample_scores(self, arms: np.ndarray, X: np.ndarray, v: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``x_a^T theta_a`` per candidate, ``theta_a ~ N(mu_a, v^2 A_a^-1)``; (n, len(arms))."""
        cov = self.A_inv[arms]
        cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1))) + 1e-12 * np.eye(self.dim)
        L = np.linalg.cholesky(cov)  # (m, d, d)
        # x^T theta = x^T mu + v * x^T L z, z ~ N(0, I): the score is Gaussian with sd v*|L^T x|
        mu = self.mean(arms, X)
        sd = v * np.linalg.norm(np.einsum("mde,md->me", L, X), axis=1)
        return mu[None, :] + sd[None, :] * rng.standard_normal((n, len(arms)))

    def get_state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}A": self.A, f"{prefix}b": self.b}

    def set_state(self, state: dict[str, np.ndarray], prefix: str) -> None:
        A, b = np.asarray(state[f"{prefix}A"], np.float64), np.asarray(state[f"{prefix}b"], np.float64)
        if A.shape != (self.n_arms, self.dim, self.dim) or b.shape != (self.n_arms, self.dim):
            raise ValueError(f"state {prefix}A/{prefix}b has shapes {A.shape}/{b.shape}, expected ({self.n_arms}, {self.dim})")
        self.A, self.b = A.copy(), b.copy()
        self.A_inv = np.linalg.inv(self.A)
