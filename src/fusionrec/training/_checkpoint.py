"""Run-folder I/O of the Trainer: per-epoch checkpoints (safetensors + JSON, never pickle),
the epoch log CSV and the training-curve PNG.

A checkpoint is the folder ``<run_dir>/checkpoint`` holding

- ``module.safetensors``: the module's state dict after the epoch;
- ``best.safetensors``: the best-so-far state (when a validation metric was tracked);
- ``optimizer.safetensors``: every tensor of the optimiser state, keyed ``<param id>.<name>``;
- ``rng.safetensors``: torch CPU (and CUDA) generator states as uint8 tensors;
- ``state.json``: epoch, numpy generator state (``bit_generator.state``), optimiser param groups
  and non-tensor state, learning-rate schedule and gradient-scaler state, history records,
  best metric/epoch and early-stopping counter, and the training config.

The folder is written to a temporary sibling and renamed, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "write_log_csv",
    "write_curve_png",
    "CHECKPOINT_DIR",
]

CHECKPOINT_DIR = "checkpoint"


def _cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in sd.items()}


def save_checkpoint(
    run_dir: Path,
    *,
    module_state: dict[str, torch.Tensor],
    best_state: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> Path:
    """Write the checkpoint folder atomically; ``state`` must be JSON-serialisable."""
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / CHECKPOINT_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_DIR}.", dir=run_dir))
    try:
        save_file(_cpu(module_state), str(tmp / "module.safetensors"))
        if best_state is not None:
            save_file(_cpu(best_state), str(tmp / "best.safetensors"))
        osd = optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, dict[str, Any]] = {}
        for pid, st in osd["state"].items():
            meta[str(pid)] = {}
            for name, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"{pid}.{name}"] = v.detach().to("cpu", copy=True).contiguous()
                else:
                    meta[str(pid)][name] = v
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                rng[f"torch_cuda_{i}"] = s
        save_file(rng, str(tmp / "rng.safetensors"))
        full = dict(state)
        full["optimizer"] = {"param_groups": osd["param_groups"], "state_meta": meta}
        (tmp / "state.json").write_text(json.dumps(full, indent=1))
        if final.exists():
            old = run_dir / f".{CHECKPOINT_DIR}.old"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_checkpoint(run_dir: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Read ``<run_dir>/checkpoint`` (None if absent): loads the optimiser and the torch RNG in
    place and returns ``state.json`` plus ``module_state`` and ``best_state`` tensors."""
    from safetensors.torch import load_file

    ck = run_dir / CHECKPOINT_DIR
    if not (ck / "state.json").is_file():
        return None
    state = json.loads((ck / "state.json").read_text())
    state["module_state"] = load_file(str(ck / "module.safetensors"))
    best = ck / "best.safetensors"
    state["best_state"] = load_file(str(best)) if best.is_file() else None
    tensors = load_file(str(ck / "optimizer.safetensors"))
    opt_meta = state.pop("optimizer")
    ostate: dict[int, dict[str, Any]] = {}
    for pid, m in opt_meta["state_meta"].items():
        ostate[int(pid)] = dict(m)
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        ostate.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": ostate, "param_groups": opt_meta["param_groups"]})
    rng = load_file(str(ck / "rng.safetensors"))
    torch.set_rng_state(rng["torch_cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    return state


def numpy_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state (plain ints and strings: JSON-safe)."""
    return rng.bit_generator.state


def write_log_csv(path: Path, records: list[dict[str, float]]) -> None:
    """The per-epoch log (one row per epoch, one column per recorded value)."""
    import pandas as pd

    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(records).to_csv(tmp, index=False)
    tmp.replace(path)


def write_curve_png(path: Path, records: list[dict[str, float]], title: str = "") -> None:
    """Loss curves (left axis) and the validation metric (right axis) against epochs."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    if not records:
        return
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    epochs = [r["epoch"] for r in records]
    for key in sorted({k for r in records for k in r if k == "loss" or k.startswith("loss_")}):
        ax.plot(epochs, [r.get(key, np.nan) for r in records], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    valid_keys = sorted({k for r in records for k in r if k.startswith("valid_")})
    handles, labels = ax.get_legend_handles_labels()
    if valid_keys:
        ax2 = ax.twinx()
        for key in valid_keys:
            pts = [(r["epoch"], r[key]) for r in records if key in r]
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="tab:red", label=key)
        ax2.set_ylabel(", ".join(valid_keys))
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="best", fontsize="small")
    ax.set_title(title or "training curve")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
