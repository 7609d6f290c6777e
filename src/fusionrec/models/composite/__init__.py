"""Models made of other models: ensemble, distillation, multi-task, label propagation."""
