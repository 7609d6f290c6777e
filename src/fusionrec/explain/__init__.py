"""Explanations: which of a user's items (or which KG paths, or which features) made the model
recommend an item, for any model."""

from fusionrec.explain.attention import attention_weights, explain_attention
from fusionrec.explain.attributions import FeatureAttribution, integrated_gradients
from fusionrec.explain.contributions import Explanation, explain_item
from fusionrec.explain.faithfulness import FaithfulnessReport, faithfulness
from fusionrec.explain.kg_paths import KGPath, kg_paths
from fusionrec.explain.leave_one_out import leave_one_out, loo_weights
from fusionrec.explain.report import explain_recommendation

__all__ = [
    "Explanation",
    "explain_item",
    "leave_one_out",
    "loo_weights",
    "attention_weights",
    "explain_attention",
    "KGPath",
    "kg_paths",
    "FeatureAttribution",
    "integrated_gradients",
    "FaithfulnessReport",
    "faithfulness",
    "explain_recommendation",
]
