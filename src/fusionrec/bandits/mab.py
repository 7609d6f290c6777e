"""Policies over the candidate list: random, greedy (the recommender's order), epsilon-greedy
with decay and softmax/Boltzmann (on a linear or per-arm reward estimate), UCB1 and
Beta-Bernoulli Thompson sampling (per-arm statistics)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from fusionrec.bandits import _choice
from fusionrec.bandits._ridge import SharedRidge
from fusionrec.bandits.base import (
    BanditInputError,
    Decision,
    Policy,
    PolicyConfig,
    as_generator,
    register_policy,
)

__all__ = ["RandomPolicy", "GreedyPolicy", "EpsilonGreedy", "Softmax", "UCB1", "ThompsonSampling"]


class _Empty(PolicyConfig):
    pass


@register_policy("random")
class RandomPolicy(Policy):
    """Uniform over the candidates (the logging policy replay needs)."""

    Config = _Empty

    def _init_state(self) -> None:
        pass

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.uniform_slate(arms, k, rng)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        return np.full(len(arms), 1.0 / len(arms))

    def _update(self, arms, contexts, rewards) -> None:
        pass

    def _get_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state) -> None:
        pass


@register_policy("greedy")
class GreedyPolicy(RandomPolicy):
    """The recommender's own ranking: the first k candidates, propensity 1; never learns."""

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.argmax_slate(arms, -np.arange(len(arms), dtype=np.float64), k)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        p = np.zeros(len(arms))
        p[0] = 1.0
        return p


class _EstimateConfig(PolicyConfig):
    estimator: Literal["linear", "arm"] = "linear"
    """Reward estimate: ``linear`` (ridge regression on the contexts, needs ``dim``) or
    ``arm`` (the mean reward of each arm id, needs ``n_arms``)."""
    dim: int | None = Field(None, ge=1)
    """Context width (``estimator="linear"``)."""
    n_arms: int | None = Field(None, ge=1)
    """Number of arm ids (``estimator="arm"``)."""
    reg: float = Field(1.0, gt=0)
    """Ridge penalty of the linear estimate."""
    prior_mean: float = 0.0
    """Estimate of an arm never played (``estimator="arm"``)."""

    @model_validator(mode="after")
    def _needs(self):
        if self.estimator == "linear" and self.dim is None:
            raise ValueError("estimator='linear' needs dim (the context width)")
        if self.estimator == "arm" and self.n_arms is None:
            raise ValueError("estimator='arm' needs n_arms")
        return self


class _EstimatePolicy(Policy):
    """A policy acting on a point estimate of each candidate's reward."""

    config: _EstimateConfig

    def _init_state(self) -> None:
        c = self.config
        self.contextual = c.estimator == "linear"
        self.uses_arm_ids = c.estimator == "arm"
        if self.contextual:
            self.ridge = SharedRidge(c.dim, c.reg)
        else:
            self.counts = np.zeros(c.n_arms)
            self.sums = np.zeros(c.n_arms)

    def estimates(self, arms: np.ndarray, contexts: np.ndarray | None) -> np.ndarray:
        if self.contextual:
            return self.ridge.mean(contexts)
        n = self.counts[arms]
        return np.where(n > 0, self.sums[arms] / np.maximum(n, 1), self.config.prior_mean)

    def _update(self, arms, contexts, rewards) -> None:
        if self.contextual:
            self.ridge.update(contexts, rewards)
        else:
            np.add.at(self.counts, arms, 1.0)
            np.add.at(self.sums, arms, rewards)

    def _get_state(self) -> dict[str, np.ndarray]:
        if self.contextual:
            return self.ridge.get_state("ridge_")
        return {"counts": self.counts, "sums": self.sums}

    def _set_state(self, state) -> None:
        if self.contextual:
            self.ridge.set_state(state, "ridge_")
        else:
            self.counts = np.asarray(state["counts"], np.float64).copy()
            self.sums = np.asarray(state["sums"], np.float64).copy()
            if self.counts.shape != (self.config.n_arms,):
                raise BanditInputError(f"saved counts have shape {self.counts.shape}, expected ({self.config.n_arms},)")


class EpsilonGreedyConfig(_EstimateConfig):
    epsilon: float = Field(0.1, ge=0, le=1)
    """Exploration probability at the start."""
    decay: float = Field(0.0, ge=0)
    """Exploration after t updates is ``max(min_epsilon, epsilon / (1 + decay * t))``."""
    min_epsilon: float = Field(0.0, ge=0, le=1)
    """Floor of the decayed exploration probability."""


@register_policy("egreedy")
class EpsilonGreedy(_EstimatePolicy):
    """With probability epsilon a uniform candidate, else the best estimate; epsilon decays."""

    Config = EpsilonGreedyConfig
    config: EpsilonGreedyConfig

    @property
    def epsilon(self) -> float:
        c = self.config
        return max(c.min_epsilon, c.epsilon / (1.0 + c.decay * self.t))

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.egreedy_slate(arms, self.estimates(arms, contexts), self.epsilon, k, rng)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        return _choice.egreedy_probabilities(self.estimates(arms, contexts), self.epsilon)


class SoftmaxConfig(_EstimateConfig):
    temperature: float = Field(0.1, gt=0)
    """Boltzmann temperature: probabilities are proportional to ``exp(estimate / temperature)``."""


@register_policy("softmax")
class Softmax(_EstimatePolicy):
    """Boltzmann exploration over the reward estimates."""

    Config = SoftmaxConfig
    config: SoftmaxConfig

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.softmax_slate(arms, self.estimates(arms, contexts), self.config.temperature, k, rng)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        return _choice.softmax_probabilities(self.estimates(arms, contexts), self.config.temperature)


class UCB1Config(PolicyConfig):
    n_arms: int = Field(ge=1)
    """Number of arm ids."""
    c: float = Field(1.0, ge=0)
    """Exploration scale: index = mean + c * sqrt(2 ln t / n_a)."""


@register_policy("ucb1")
class UCB1(Policy):
    """UCB1 (Auer et al. 2002): arms never played first (in candidate order), then the index."""

    Config = UCB1Config
    config: UCB1Config
    uses_arm_ids = True

    def _init_state(self) -> None:
        self.counts = np.zeros(self.config.n_arms)
        self.sums = np.zeros(self.config.n_arms)

    def index(self, arms: np.ndarray) -> np.ndarray:
        n = self.counts[arms]
        total = max(float(self.counts.sum()), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = self.sums[arms] / n + self.config.c * np.sqrt(2.0 * np.log(total) / n)
        return np.where(n > 0, idx, np.inf)

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.argmax_slate(arms, self.index(arms), k)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        p = np.zeros(len(arms))
        p[int(np.argmax(self.index(arms)))] = 1.0
        return p

    def _update(self, arms, contexts, rewards) -> None:
        np.add.at(self.counts, arms, 1.0)
        np.add.at(self.sums, arms, rewards)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts, "sums": self.sums}

    def _set_state(self, state) -> None:
        self.counts = np.asarray(state["counts"], np.float64).copy()
        self.sums = np.asarray(state["sums"], np.float64).copy()
        if self.counts.shape != (self.config.n_arms,):
            raise BanditInputError(f"saved counts have shape {self.counts.shape}, expected ({self.config.n_arms},)")


class ThompsonConfig(PolicyConfig):
    n_arms: int = Field(ge=1)
    """Number of arm ids."""
    alpha: float = Field(1.0, gt=0)
    """Beta prior successes."""
    beta: float = Field(1.0, gt=0)
    """Beta prior failures."""
    n_propensity_samples: int = Field(100, ge=0)
    """Extra posterior draws that estimate each decision's propensity."""


@register_policy("ts")
class ThompsonSampling(Policy):
    """Beta-Bernoulli Thompson sampling; a reward r in [0, 1] adds r successes, 1 - r failures."""

    Config = ThompsonConfig
    config: ThompsonConfig
    uses_arm_ids = True

    def _init_state(self) -> None:
        self.successes = np.zeros(self.config.n_arms)
        self.failures = np.zeros(self.config.n_arms)

    def _draws(self, arms: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        a = self.config.alpha + self.successes[arms]
        b = self.config.beta + self.failures[arms]
        return rng.beta(a[None, :], b[None, :], size=(n, len(arms)))

    def _select(self, arms, contexts, k, rng) -> Decision:
        return _choice.draws_slate(arms, self._draws(arms, 1 + self.config.n_propensity_samples, rng), k)

    def _probabilities(self, arms, contexts, rng) -> np.ndarray:
        return _choice.draws_probabilities(self._draws(arms, max(self.config.n_propensity_samples, 1), as_generator(rng)))

    def _update(self, arms, contexts, rewards) -> None:
        if np.any((rewards < 0) | (rewards > 1)):
            raise BanditInputError("Beta-Bernoulli Thompson sampling needs rewards in [0, 1]")
        np.add.at(self.successes, arms, rewards)
        np.add.at(self.failures, arms, 1.0 - rewards)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"successes": self.successes, "failures": self.failures}

    def _set_state(self, state) -> None:
        self.successes = np.asarray(state["successes"], np.float64).copy()
        self.failures = np.asarray(state["failures"], np.float64).copy()
        if self.successes.shape != (self.config.n_arms,):
            raise BanditInputError(f"saved successes have shape {self.successes.shape}, expected ({self.config.n_arms},)")
