"""Contextual bandits: policies with propensities, off-policy estimators, a simulator on a
fitted recommender, time-ordered replay and drift detection on the reward stream."""

from fusionrec.bandits.base import (
    POLICIES,
    BanditInputError,
    Decision,
    Policy,
    PolicyConfig,
    as_generator,
    load_policy,
    make_policy,
    register_policy,
)
from fusionrec.bandits.linear import LinTS, LinUCB
from fusionrec.bandits.mab import (
    UCB1,
    EpsilonGreedy,
    GreedyPolicy,
    RandomPolicy,
    Softmax,
    ThompsonSampling,
)

__all__ = [
    "POLICIES",
    "BanditInputError",
    "Decision",
    "Policy",
    "PolicyConfig",
    "as_generator",
    "load_policy",
    "make_policy",
    "register_policy",
    "LinUCB",
    "LinTS",
    "EpsilonGreedy",
    "Softmax",
    "UCB1",
    "ThompsonSampling",
    "GreedyPolicy",
    "RandomPolicy",
]
