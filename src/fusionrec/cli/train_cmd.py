"""``fusionrec train --config FILE [--run-dir DIR] [--resume] [--nproc N [--nnodes M ...]]``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fusionrec.cli._common import atomic_write_text, console, metrics_table, new_run_dir

if TYPE_CHECKING:
    from fusionrec.experiment.config import ExperimentConfig

#: Sub-folder of a run folder that holds a torch model's Trainer output (checkpoint/, log.csv,
#: curve.png).
TRAIN_SUBDIR = "training"


def _latest_resumable(cfg: ExperimentConfig, runs: Path = Path("runs")) -> Path:
    """The newest ``runs/*-train-<model>*`` folder with a training checkpoint whose config.json
    describes the same experiment as ``cfg``; a ConfigError when there is none (naming how the
    newest candidate differs)."""
    from fusionrec.errors import ConfigError
    from fusionrec.experiment.resume import config_differences, saved_config
    from fusionrec.training._checkpoint import CHECKPOINT_DIR

    name = cfg.model.name
    found = sorted(
        (p for p in runs.glob(f"*-train-{name}*") if (p / TRAIN_SUBDIR / CHECKPOINT_DIR).is_dir()),
        key=lambda p: p.name,
        reverse=True,
    )
    if not found:
        raise ConfigError(
            f"--resume: no run folder under ./runs/ holds a checkpoint of {name!r}; pass --run-dir DIR"
        )
    first_diff: tuple[Path, list[str]] | None = None
    for run in found:
        saved = saved_config(run)
        diff = ["config.json: missing"] if saved is None else config_differences(saved, cfg)
        if not diff:
            return run
        first_diff = first_diff or (run, diff)
    run, diff = first_diff  # type: ignore[misc]
    raise ConfigError(
        f"--resume: none of the {len(found)} run folder(s) with a checkpoint of {name!r} was "
        f"trained with this config; the newest, {run}, differs in: {'; '.join(diff)}. "
        "Pass that run's config (or --run-dir DIR with its own config.json), or train afresh"
    )


def train_cmd(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Experiment config (YAML/TOML/JSON). With --resume it defaults to the run's config.json.",
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override, e.g. --set train.epochs=5 (repeatable)."
    ),
    protocol: str | None = typer.Option(None, "--protocol", help="Override data.protocol."),
    pii: str | None = typer.Option(None, "--pii", help="Override data.pii: generalise (zip prefix, age bands), drop or keep."),
    output: Path | None = typer.Option(
        None,
        "--run-dir",
        "--output",
        help="Run folder (default: new folder under ./runs/). Torch models keep a checkpoint per "
        "epoch, log.csv and curve.png in its training/ sub-folder.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run from its last checkpoint (the run folder given by "
        "--run-dir, else the newest ./runs/*-train-<model> folder with a checkpoint trained with "
        "the same config); only a run whose config.json matches (model, params, data, eval, seed; "
        "the epoch budget may grow) is continued. The result equals an uninterrupted run.",
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu, cuda or cuda:N (a run option: not saved with the model)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch intra-op threads on CPU (default: the model's, 1)."
    ),
    progress: bool = typer.Option(False, "--progress", help="Show a per-epoch progress bar."),
    nproc: int = typer.Option(
        1, "--nproc", min=1, help="Data-parallel processes on this machine (torch.distributed.run; gloo on CPU, "
        "NCCL on GPU, one GPU per process). Every global batch is split across them (docs/scale.md).",
    ),
    nnodes: int = typer.Option(1, "--nnodes", min=1, help="Machines taking part (each runs this command)."),
    node_rank: int = typer.Option(0, "--node-rank", min=0, help="This machine's rank among --nnodes."),
    rdzv_endpoint: str | None = typer.Option(
        None, "--rdzv-endpoint", help="HOST:PORT every node reaches for the rendezvous (needed with --nnodes > 1)."
    ),
    rdzv_backend: str = typer.Option("c10d", "--rdzv-backend", help="torch.distributed.run rendezvous backend."),
    rdzv_id: str = typer.Option("fusionrec", "--rdzv-id", help="Job id shared by every node of one run."),
) -> None:
    """Train and evaluate the model described by a config; save it under OUTPUT/models/<name>."""
    from fusionrec.errors import ConfigError
    from fusionrec.experiment import RunOptions, run
    from fusionrec.experiment.config import load_config
    from fusionrec.experiment.resume import CONFIG_FILE, check_same_experiment

    overrides = list(set_) + ([f"data.protocol={protocol}"] if protocol else []) + ([f"data.pii={pii}"] if pii else [])
    if config is None:
        if not (resume and output is not None):
            raise ConfigError(
                "--config is required (it may be left out only with --resume --run-dir DIR)"
            )
        config = output / CONFIG_FILE
        if not config.is_file():
            raise ConfigError(f"cannot resume {output}: it has no config.json (pass --config)")
    cfg = load_config(config, overrides)
    if resume:
        from fusionrec.models.registry import get_model
        from fusionrec.models.torch_base import TorchRecommender

        if output is None:
            output = _latest_resumable(cfg)
        elif not output.is_dir():
            raise ConfigError(f"--resume: run folder {output} does not exist")
        if not issubclass(get_model(cfg.model.name), TorchRecommender):
            raise ConfigError(f"cannot resume model {cfg.model.name!r}: it is not trained by epochs")
        check_same_experiment(output, cfg, "resume")
        console.print(f"resuming {output}")
    elif output is not None:
        check_same_experiment(output, cfg, "train into")  # never overwrite another run's config
    worker = _worker_rank()
    if worker is None or worker[0] == 0:
        run_dir = new_run_dir(f"train-{cfg.model.name}", output)
        atomic_write_text(run_dir / CONFIG_FILE, cfg.model_dump_json(indent=2))
    else:
        if output is None:  # e.g. started by hand under torchrun: ranks must share one folder
            raise ConfigError(f"rank {worker[0]} of {worker[1]}: every rank needs the same --run-dir (fusionrec train --nproc N passes it)")
        run_dir = output
    if nproc > 1 or nnodes > 1:
        _launch(cfg, run_dir, resume, device, threads, progress, nproc, nnodes, node_rank, rdzv_endpoint, rdzv_backend, rdzv_id)
        return
    options = RunOptions(
        output_dir=run_dir,
        train_dir=run_dir / TRAIN_SUBDIR,
        resume=resume,
        device=device,
        cpu_threads=threads,
        progress=True if progress else None,
    )
    if worker is not None:
        options = _join_group(options, worker)
        if worker[0] != 0:  # only rank 0 evaluates, saves and reports
            run(cfg, options)
            _leave_group()
            return
    res = run(cfg, options)  # KeyboardInterrupt propagates: the entry point exits 130
    if worker is not None:
        _leave_group()
    cols = [f"{m}@{k}" for k in cfg.eval.ks for m in cfg.eval.metrics]
    sampled = f" · SAMPLED {cfg.eval.protocol} evaluation" if cfg.eval.protocol != "full" else ""
    ranks = f" · {worker[1]} processes" if worker is not None else ""
    console.print(
        metrics_table(
            f"{cfg.data.name} · {cfg.data.protocol}{sampled}{ranks}",
            [res.as_dict()],
            cols,
            [("fit_seconds", "fit s")],
        )
    )
    console.print(f"model saved to {res.model_dir}; metrics in {run_dir / 'metrics.json'}")
    console.print_json(json.dumps({"metrics": res.metrics}))


def _worker_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when torch.distributed.run started this process as one of
    several ranks; None otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2 or "RANK" not in os.environ:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def _join_group(options, worker: tuple[int, int, int]):
    """Join the process group torch.distributed.run set up: NCCL with one GPU per local rank
    when the run's device is (or resolves to) CUDA, gloo on CPU otherwise."""
    import torch

    from fusionrec.training.distributed import backend_for, init_process_group

    rank, world, local = worker
    device = options.device or "auto"
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    elif device == "auto":
        device = "cpu"
    init_process_group(backend_for(device), rank, world)
    changes = {"device": device}
    if rank != 0:  # the other ranks train only: no evaluation, files or progress bar
        changes.update(output_dir=None, progress=False, evaluate=_skip_evaluation)
    return options.replace(**changes)


def _skip_evaluation(model, split):
    import numpy as np

    from fusionrec.evaluation.evaluator import EvalResult

    return EvalResult(metrics={}, users=np.zeros(0, np.int64), per_user={})


def _leave_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _launch(
    cfg, run_dir: Path, resume: bool, device: str | None, threads: int | None, progress: bool, nproc: int, nnodes: int, node_rank: int,
    rdzv_endpoint: str | None, rdzv_backend: str, rdzv_id: str,
) -> None:
    """Start ``nproc`` ranks of this command on this node through torch.distributed.run, all
    training into ``run_dir`` (rank 0 writes it) from the config written there (overrides
    applied)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    from fusionrec.errors import FusionRecError
    from fusionrec.experiment.resume import CONFIG_FILE
    from fusionrec.training.distributed import torchrun_args

    try:
        launcher = torchrun_args(nproc, nnodes, node_rank, rdzv_endpoint, rdzv_backend, rdzv_id)
    except ValueError as e:
        from fusionrec.errors import ConfigError

        raise ConfigError(str(e)) from None
    argv = ["train", "--config", str(run_dir / CONFIG_FILE), "--run-dir", str(run_dir)]
    if resume:
        argv.append("--resume")
    if device:
        argv += ["--device", device]
    if threads:
        argv += ["--threads", str(threads)]
    if progress:
        argv.append("--progress")
    console.print(f"training {cfg.model.name} on {nproc * nnodes} processes ({nnodes} node(s)) into {run_dir}")
    try:
        torchrun([*launcher, "-m", "fusionrec.cli.main", *argv])
    except ChildFailedError as e:
        raise FusionRecError(f"distributed training failed: {e.format_msg() if hasattr(e, 'format_msg') else e}") from None
    finally:
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
