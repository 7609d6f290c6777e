"""Experiments: the one runner (load -> split -> fit -> evaluate -> save), its run options, typed
config, hyperparameter tuning and source ablations. The CLI and the benchmarks call this layer:

    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import load_config

    result = run(load_config("configs/bpr.yaml"), RunOptions(output_dir=Path("runs/bpr")))
"""

from fusionrec.experiment.export import export_recommendations, export_split
from fusionrec.experiment.options import RunOptions, fit_model, make_model
from fusionrec.experiment.runner import (
    EXPERIMENT_FILE,
    PreparedData,
    RunResult,
    experiment_record,
    fit_and_evaluate,
    prepare,
    prepare_data,
    run,
    run_experiment,
    run_many,
    split_for_model_dir,
    training_data,
    unmet_needs,
)

__all__ = [
    "run",
    "run_many",
    "RunOptions",
    "RunResult",
    "PreparedData",
    "prepare",
    "prepare_data",
    "training_data",
    "unmet_needs",
    "make_model",
    "fit_model",
    "fit_and_evaluate",
    "run_experiment",
    "experiment_record",
    "export_split",
    "export_recommendations",
    "split_for_model_dir",
    "EXPERIMENT_FILE",
]
