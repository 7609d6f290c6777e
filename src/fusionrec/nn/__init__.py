"""Reusable torch parts: MLPs, losses, graph propagation (one file per family)."""
