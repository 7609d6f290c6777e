"""Strategies that combine or train models: ensembles, multi-task, distillation, label propagation, curricula."""
