"""Experiments: the one runner (load -> split -> fit -> evaluate -> save/export), its typed
config, hyperparameter tuning and source ablations. The CLI and the benchmarks call this layer.
"""

from fusionrec.experiment.runner import (
    EXPERIMENT_FILE,
    RunResult,
    experiment_record,
    export_recommendations,
    export_split,
    fit_and_evaluate,
    prepare_data,
    run_experiment,
    split_for_model_dir,
    training_data,
)

__all__ = [
    "RunResult",
    "prepare_data",
    "training_data",
    "fit_and_evaluate",
    "run_experiment",
    "experiment_record",
    "export_split",
    "export_recommendations",
    "split_for_model_dir",
    "EXPERIMENT_FILE",
]
