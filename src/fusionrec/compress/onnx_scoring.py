"""ONNX export of a torch model's full-catalogue scoring, and onnxruntime scoring from it.

The exported graph maps a batch of user indices (``users``: int64 ``[batch]``) — or, for
sequential models, their padded item histories (``seq``: int64 ``[batch, max_len]``) — to
scores over every item (``[batch, n_items]``), with the trained weights as constants. Graph
models are scored once before the export, so the propagated user and item embeddings (cached
in eval mode) enter the graph as constants: the user tower plus item vectors. Where the
scoring code loops over the batch (NeuMF chunks its users) the exporter fixes the batch size;
the scorer then feeds chunks of that size, padding the last.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fusionrec.errors import ConfigError, ModelStateError

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender
    from fusionrec.models.torch_base import TorchRecommender

__all__ = ["OnnxScorer", "EXPORT_BATCH"]

EXPORT_BATCH = 64
_META_HISTORY = "fusionrec.history_key"


class _Scoring(torch.nn.Module):
    def __init__(self, model: TorchRecommender, sequential: bool) -> None:
        super().__init__()
        self.model, self.sequential = model, sequential
        self.inner = model.module_

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequential:
            return self.model._score_seqs(x, None).float()
        return self.model.score_tensor(x, None).float()


def _history_key(model: TorchRecommender) -> str | None:
    """The extra-state key holding the per-user histories a sequential model scores from."""
    hist = getattr(model, "hist_", None)
    if hist is None or not callable(getattr(model, "_score_seqs", None)):
        return None
    for key, value in model._extra_state().items():
        if value is hist or (isinstance(value, np.ndarray) and value.shape == hist.shape and np.array_equal(value, hist)):
            return key
    return None


def _export(model: TorchRecommender, sequential: bool, name: str, example: np.ndarray):  # noqa: ANN202 - torch.onnx.ONNXProgram
    try:
        with torch.no_grad():
            return torch.onnx.export(
                _Scoring(model, sequential),
                (torch.as_tensor(example, device=model.device_),),
                dynamo=True,
                input_names=[name],
                output_names=["scores"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
    except Exception as e:  # the exporter raises many kinds; name the model and the cause
        raise ConfigError(f"model {model.name!r}: its scoring cannot be exported to ONNX ({type(e).__name__}: {str(e)[:300]})") from None


def _static_batch(program) -> int | None:  # noqa: ANN001 - torch.onnx.ONNXProgram
    dim = program.model_proto.graph.input[0].type.tensor_type.shape.dim[0]
    return int(dim.dim_value) if dim.HasField("dim_value") else None


class OnnxScorer:
    """An onnxruntime session scoring users over the whole catalogue."""

    def __init__(self, model_bytes: bytes, histories: np.ndarray | None, history_key: str | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        self.model_bytes = model_bytes
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        dim0 = inp.shape[0]
        self.batch: int | None = dim0 if isinstance(dim0, int) else None
        self.histories, self.history_key = histories, history_key
        if inp.name == "seq" and histories is None:
            raise ModelStateError("the ONNX graph scores histories but the folder has none")

    @classmethod
    def export(cls, model: TorchRecommender) -> OnnxScorer:
        """Trace ``model``'s scoring into ONNX (weights as constants) and open it in onnxruntime."""
        key = _history_key(model)
        sequential = key is not None
        model.module_.eval()
        n = min(EXPORT_BATCH, model.n_users)
        users = np.arange(n, dtype=np.int64)
        model.score_indices(users[:1])  # fills eval-mode caches (graph propagation)
        name = "seq" if sequential else "users"
        program = _export(model, sequential, name, model.hist_[users] if sequential else users)
        if _static_batch(program) not in (None, 1):
            # the scoring code looped over the batch and the exporter fixed its size: a graph for
            # one user at a time, so scoring one user does not pay for a padded batch
            program = _export(model, sequential, name, model.hist_[users[:1]] if sequential else users[:1])
        proto = program.model_proto
        if key is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = _META_HISTORY, key
        histories = np.asarray(model.hist_, dtype=np.int64) if sequential else None
        return cls(proto.SerializeToString(), histories, key)

    @classmethod
    def load(cls, path: Path, extras: dict[str, Any]) -> OnnxScorer:
        import onnx

        try:
            data = Path(path).read_bytes()
            meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
        except Exception as e:  # onnx raises its own DecodeError types
            raise ModelStateError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
        key = meta.get(_META_HISTORY)
        hist = None
        if key is not None:
            if key not in extras:
                raise ModelStateError(f"{path}: scores histories from state array {key!r}, which the folder lacks")
            hist = np.asarray(extras[key], dtype=np.int64)
        try:
            return cls(data, hist, key)
        except ModelStateError:
            raise
        except Exception as e:
            raise ModelStateError(f"{path}: onnxruntime cannot open it ({type(e).__name__}: {e})") from None

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.model_bytes)

    def score(self, model: Recommender, user_idx: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
        """Scores ``(len(user_idx), n_items or len(item_idx))`` as float32."""
        x = self.histories[user_idx] if self.histories is not None else user_idx
        if len(x) == 0:
            out = np.zeros((0, model.n_items), np.float32)
        elif self.batch is None:
            out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        else:
            parts = []
            for s in range(0, len(x), self.batch):
                chunk = x[s : s + self.batch]
                pad = self.batch - len(chunk)
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
                parts.append(self.session.run(None, {self.input_name: np.ascontiguousarray(chunk)})[0][: self.batch - pad])
            out = np.concatenate(parts)
        out = np.asarray(out, dtype=np.float32)
        return out if item_idx is None else out[:, np.asarray(item_idx, dtype=np.int64)]
