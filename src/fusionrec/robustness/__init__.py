"""Robustness: shilling (data-poisoning) attacks, a fake-profile detector, attack studies.

Adversarial training (APR) is BPR's ``adv_eps``/``adv_weight`` config option
(``fusionrec.models.classic.bpr``); this package measures what it buys.
"""

from fusionrec.robustness.detection import DetectionResult, detect_fake_profiles, precision_recall
from fusionrec.robustness.poisoning import (
    ShillingAttack,
    inject_profiles,
    pick_targets,
    target_hit_rate,
)

__all__ = [
    "DetectionResult",
    "ShillingAttack",
    "detect_fake_profiles",
    "inject_profiles",
    "pick_targets",
    "precision_recall",
    "target_hit_rate",
]
