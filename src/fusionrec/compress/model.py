"""``compressed``: a trained torch model after post-training compression, as a Recommender.

A compressed folder is an ordinary saved-model folder whose ``config.json`` names the model
``compressed`` with ``{"base": "bpr", "base_params": {...}, "method": "int8"}``; ``load_model``
finds this class through the ``fusionrec.models`` entry points like any plugin, so
``evaluate --model-dir``, ``recommend`` and ``serve`` read it unchanged. Beside the usual files
its ``state.safetensors`` holds the module's tensors encoded as in
:mod:`fusionrec.compress.tensors` (keys ``c.<state key>[.<suffix>]``; bfloat16 as int16 bits),
``model.onnx`` the graph for the ``onnx`` method, and ``compression.json`` the manifest
(method, ratio, source folder, sizes).

Scoring, recommending and every model-specific attribute (``user_vectors``, ``history_``, ...)
are the base model's, run on the compressed module. The text models (``lm_mf``, ``lm_sasrec``,
``lm_lightgcn``, ``text_seq``, ``joint``) compress like any torch model, their cached item text
vectors included; a distilled model with a ``student`` compresses that student (the folder is
the student's); the closed-form EASE family stores its dense B in half precision
(:mod:`fusionrec.compress.dense`). ``fit`` trains the base model and then
compresses it (so the shared conformance checks run over this class too);
:func:`fusionrec.compress.compress_model` compresses an already trained one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator

from fusionrec.compress.dense import (
    check_dense_method,
    decode_dense,
    encode_dense,
    half_scores,
    history_rows,
    is_dense_ease,
)
from fusionrec.compress.spec import CompressionSpec, parse_method
from fusionrec.compress.tensors import encode, restore
from fusionrec.config.base import ModelConfig
from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError, FusionRecError, ModelStateError
from fusionrec.models.base import Capabilities, Recommender
from fusionrec.models.folder import STATE_FILE
from fusionrec.models.registry import get_model, register
from fusionrec.models.torch_base import TorchRecommender, cpu_threads
from fusionrec.training.options import FitOptions
from fusionrec.training.trainer import resolve_device

__all__ = ["CompressedModel", "CompressedConfig", "PREFIX", "ONNX_FILE", "check_compressible"]

#: the compressed module tensors sit in state.safetensors under this prefix (beside ``extra.*``)
PREFIX = "c."
ONNX_FILE = "model.onnx"


class CompressedConfig(ModelConfig):
    """What was compressed and how."""

    base: str = "bpr"
    """Registered name of the torch model that is compressed."""
    base_params: dict[str, Any] = Field(default_factory=dict)
    """That model's parameters (as in its own config.json)."""
    method: str = "int8"
    """int8, fp16, bf16, prune:RATIO, prune-structured:RATIO or onnx."""
    linear_int8: str = "auto"
    """How int8 Linear layers run: dynamic (torchao int8 kernels), weight_only (int8 storage,
    dequantized on access: for models that read Linear weights directly, as NeuMF does) or
    auto (dynamic where the model scores with it; the saved config records the choice)."""

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        return str(parse_method(v))

    @field_validator("linear_int8")
    @classmethod
    def _linear(cls, v: str) -> str:
        if v not in ("auto", "dynamic", "weight_only"):
            raise ValueError(f"linear_int8 must be auto, dynamic or weight_only, got {v!r}")
        return v

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        if v.lower() == "compressed":
            raise ValueError("a compressed model cannot be compressed again; compress the source folder")
        return v


#: models whose ``_set_state`` is TorchRecommender's plus steps a compressed folder repeats:
#: the text models reload their fine-tuned encoder weights (``_text_after_load``), and
#: ``distill`` without a ``student`` is TorchRecommender's restore unchanged
_RESTORES_LIKE_TORCH = frozenset(
    {
        "fusionrec.models.text.lm_mf.LMMF",
        "fusionrec.models.text.lm_sasrec.LMSASRec",
        "fusionrec.models.text.lm_lightgcn.LMLightGCN",
        "fusionrec.models.text.text_seq.TextSeq",
        "fusionrec.models.composite.joint.JointRec",
        "fusionrec.models.composite.distill.Distilled",
    }
)


def _restores_like_torch(cls: type) -> bool:
    for klass in cls.__mro__:
        if klass is TorchRecommender:
            return True
        if "_set_state" in klass.__dict__ and f"{klass.__module__}.{klass.__qualname__}" not in _RESTORES_LIKE_TORCH:
            return False
    return True


def check_compressible(model: Recommender, spec: CompressionSpec | None = None) -> Recommender:
    """The model whose state is compressed: ``model`` itself for a torch model (the student of
    a distilled model with a ``student``), or an EASE-family model for fp16/bf16; else a
    ConfigError naming why."""
    if isinstance(model, CompressedModel):
        raise ConfigError(f"model {model.config.base!r} is already compressed ({model.config.method}); compress its source folder instead")
    student = getattr(model, "student_", None) if model.name == "distill" else None
    if student is not None:
        return check_compressible(student, spec)
    if is_dense_ease(type(model)):
        if spec is not None:
            check_dense_method(model.name, spec)
        return model
    if not isinstance(model, TorchRecommender):
        raise ConfigError(
            f"model {model.name!r} is not a torch model: compression (int8, fp16, bf16, pruning, onnx) "
            "applies to torch models with embedding tables and MLPs (bpr, lightgcn, neumf, two_tower, sasrec, "
            "the lm_* text models, joint, distill, ...) and fp16/bf16 to EASE's dense matrix (ease, lm_ease, kg_ease)"
        )
    if not _restores_like_torch(type(model)):
        raise ConfigError(
            f"model {model.name!r} restores extra state of its own when loaded (it overrides _set_state), "
            "which compressed folders cannot rebuild"
        )
    return model


@register("compressed")
class CompressedModel(Recommender):
    """A torch model after post-training compression (int8, fp16/bf16, pruning or ONNX)."""

    Config: ClassVar[type[ModelConfig]] = CompressedConfig
    capabilities = Capabilities()
    needs_configuration: ClassVar[str | None] = "compresses a trained model: use `fusionrec compress`"

    def __init__(self, config: ModelConfig | dict | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.spec: CompressionSpec = parse_method(self.config.method)
        self.inner_: TorchRecommender | None = None
        #: True for the EASE family (dense B in half precision, no torch module)
        self.dense_: bool = is_dense_ease(get_model(self.config.base))
        if self.dense_:
            check_dense_method(self.config.base, self.spec)

    # ----------------------------------------------------------- build
    @classmethod
    def from_model(cls, model: Recommender, method: str | CompressionSpec, linear_int8: str = "auto") -> CompressedModel:
        """Compress a fitted torch model (left untouched) with ``method``."""
        spec = parse_method(method) if isinstance(method, str) else method
        model._require_fitted()
        base = check_compressible(model, spec)
        out = cls(base=base.name, base_params=base.config.model_dump(mode="json"), method=str(spec), linear_int8=linear_int8)
        out.fit_options_ = base._options() if isinstance(base, TorchRecommender) else model.fit_options_
        out._adopt_ids(base)
        out._compress(base)
        out.fitted_ = True
        return out

    def _adopt_ids(self, base: Recommender) -> None:
        self.users_, self.items_ = base.users_, base.items_
        self.seen_, self.item_pop_, self.item_titles_ = base.seen_, base.item_pop_, base.item_titles_

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        base = get_model(self.config.base)(self.config.base_params)
        check_compressible(base, self.spec)
        base.fit(dataset, valid, seed, options=self.fit_options_)
        self._compress(base)

    def check_dataset(self, dataset: Dataset) -> None:
        get_model(self.config.base)(self.config.base_params).check_dataset(dataset)

    def _compress(self, base: Recommender) -> None:
        spec = self.spec
        if self.dense_:
            self._install_dense(encode_dense(base._get_state(), spec), "the model")
            self._probe()
            return
        assert isinstance(base, TorchRecommender)
        mode = self.config.linear_int8
        if spec.kind == "int8" and mode == "auto":
            for mode in ("dynamic", "weight_only"):
                try:
                    self._install(base, encode(base.module_, spec, mode))
                    self._probe()
                    break
                except (NotImplementedError, RuntimeError, TypeError):
                    if mode == "weight_only":
                        raise
            self.config = self.config.model_copy(update={"linear_int8": mode})
        else:
            self._install(base, encode(base.module_, spec, "weight_only" if mode == "auto" else mode))
        if spec.kind == "onnx":
            from fusionrec.compress.onnx_scoring import OnnxScorer

            self.onnx_: OnnxScorer | None = OnnxScorer.export(self._inner())
        self._probe()

    def _install(self, base: TorchRecommender, stored: dict[str, torch.Tensor]) -> None:
        inner = copy.copy(base)  # shares ids and extra arrays; the module is its own
        # the extra state goes through the same restore as a loaded folder (the text models'
        # fine-tuned encoder weights included), then a fresh module is built, not a deepcopy:
        # graph models hold sparse buffers that cannot be deep-copied
        inner._load_extra_state(base._extra_state())
        module = inner.build_module()
        restore(module, stored)
        inner.module_ = module.to(base.device_)
        inner.module_.eval()
        _after_restore(inner)
        self.inner_, self.stored_ = inner, stored
        self.capabilities = base.capabilities

    def _install_dense(self, stored: dict[str, torch.Tensor], where: str) -> None:
        """The EASE-family base model holding the half-precision B (scored by ``half_scores``)."""
        inner = get_model(self.config.base)(self.config.base_params)
        for attr in ("users_", "items_", "seen_", "item_pop_", "item_titles_"):
            setattr(inner, attr, getattr(self, attr))
        inner.fit_options_ = self._options()
        state = decode_dense(stored, where)
        if state["B"].shape[0] != self.n_items:  # type: ignore[union-attr]
            raise ModelStateError(f"{where}: B has {state['B'].shape[0]} rows for {self.n_items} items")  # type: ignore[union-attr]
        try:
            inner._set_state(state)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise ModelStateError(f"{where}: the compressed state does not fit model {self.config.base!r} ({type(e).__name__}: {e})") from None
        inner.fitted_ = True
        self.inner_, self.stored_ = inner, stored  # type: ignore[assignment]
        self.capabilities = type(inner).capabilities

    def _probe(self) -> None:
        rows = np.arange(min(2, self.n_users), dtype=np.int64)
        self.score_indices(rows)

    # ---------------------------------------------------------- scoring
    def _options(self) -> FitOptions:
        return getattr(self, "fit_options_", None) or self.default_options

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        self._require_fitted_parts()
        if self.dense_:
            return half_scores(self.seen_[np.asarray(user_idx, dtype=np.int64)], self._inner().B_, item_idx)
        onnx = getattr(self, "onnx_", None)
        if onnx is not None:
            with cpu_threads(self._options().cpu_threads):
                return onnx.score(self, np.asarray(user_idx, dtype=np.int64), item_idx)
        from torch.nn.utils import parametrize

        with parametrize.cached():
            return self._inner().score_indices(user_idx, item_idx)

    def _require_fitted_parts(self) -> None:
        if self.inner_ is None and getattr(self, "onnx_", None) is None:
            self._inner()

    def score_histories(self, histories):  # noqa: ANN001 - the base model's signature
        if self.dense_:
            return half_scores(history_rows(histories, self.n_items), self._inner().B_)
        from torch.nn.utils import parametrize

        with parametrize.cached(), torch.no_grad():
            return self._inner().score_histories(histories)

    def item_vectors(self) -> np.ndarray | None:
        if self.dense_:
            return self._inner().B_.T.float().numpy()
        from torch.nn.utils import parametrize

        with parametrize.cached(), torch.no_grad():
            return self._inner().item_vectors()

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the base model's own attributes and methods
        # (user_vectors, history_, hist_, ...) answer for the compressed one
        if name.startswith("__") or name in ("inner_", "onnx_", "_folder_", "_extras_", "stored_", "config", "spec", "dense_"):
            raise AttributeError(name)
        if self.__dict__.get("inner_") is None and "_folder_" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._inner(), name)

    # ------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        if self.dense_:
            return {f"{PREFIX}{k}": _to_numpy(v) for k, v in self._inner_stored().items()}
        extras = self.__dict__.get("_extras_")
        if extras is None:
            extras = self._inner()._extra_state()
        stored = self.__dict__.get("stored_")
        if stored is None:
            stored = self._read_stored()
        out = {f"extra.{k}": np.asarray(v) for k, v in extras.items()}
        out.update({f"{PREFIX}{k}": _to_numpy(v) for k, v in stored.items()})
        return out

    def _save_files(self, folder: Path) -> None:
        onnx = getattr(self, "onnx_", None)
        if onnx is not None:
            onnx.save(folder / ONNX_FILE)
        if self.inner_ is not None:
            self.inner_._save_files(folder)

    def _load_files(self, folder: Path) -> None:
        self._folder_ = Path(folder)
        if self.spec.kind == "onnx" and not (self._folder_ / ONNX_FILE).is_file():
            raise ModelStateError(f"{self._folder_ / ONNX_FILE}: missing (a compressed onnx folder needs it)")

    def _inner_stored(self) -> dict[str, torch.Tensor]:
        stored = self.__dict__.get("stored_")
        return self._read_stored() if stored is None else stored

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._extras_ = {k[6:]: v for k, v in state.items() if k.startswith("extra.")}
        self.capabilities = get_model(self.config.base).capabilities
        if not any(k.startswith(PREFIX) for k in state):
            raise ModelStateError(f"{self._folder_ / STATE_FILE}: holds no compressed module tensors ({PREFIX}*)")
        if self.dense_:
            stored = {k[len(PREFIX) :]: _from_numpy(k, v) for k, v in state.items() if k.startswith(PREFIX)}
            self._install_dense(stored, str(self._folder_ / STATE_FILE))
            return
        if self.spec.kind == "onnx":
            from fusionrec.compress.onnx_scoring import OnnxScorer

            self.onnx_ = OnnxScorer.load(self._folder_ / ONNX_FILE, self._extras_)
            # the torch module (fp32) loads from the folder only when something besides scoring
            # needs it: item vectors, ad-hoc histories, the base model's own attributes
            self.inner_, self.stored_ = None, None
        else:
            stored = {k[len(PREFIX) :]: _from_numpy(k, v) for k, v in state.items() if k.startswith(PREFIX)}
            self.inner_ = self._build_inner(self._folder_, self._extras_, stored)
            self.stored_ = stored  # the module holds these very tensors (no second copy)

    def _read_stored(self) -> dict[str, torch.Tensor]:
        from safetensors.numpy import safe_open

        path = self._folder_ / STATE_FILE
        try:
            with safe_open(str(path), "np") as f:
                return {k[len(PREFIX) :]: _from_numpy(k, f.get_tensor(k)) for k in f.keys() if k.startswith(PREFIX)}  # noqa: SIM118
        except OSError as e:
            raise ModelStateError(f"{path}: cannot read the compressed tensors ({e})") from None

    def _inner(self) -> TorchRecommender:
        if self.inner_ is None:
            self._require_fitted()
            stored = self._read_stored()
            self.inner_ = self._build_inner(self._folder_, self._extras_, stored)
            self.stored_ = stored
        return self.inner_

    def _build_inner(self, folder: Path, extras: dict[str, np.ndarray], stored: dict[str, torch.Tensor]) -> TorchRecommender:
        cls = get_model(self.config.base)
        inner = cls(self.config.base_params)
        if not isinstance(inner, TorchRecommender):
            raise ModelStateError(f"{folder}: base model {self.config.base!r} is not a torch model")
        inner.fit_options_ = self._options()
        for attr in ("users_", "items_", "seen_", "item_pop_", "item_titles_"):
            setattr(inner, attr, getattr(self, attr))
        inner.device_ = resolve_device(self._options().device)
        where = str(folder / STATE_FILE)
        try:
            inner._load_files(folder)
            inner._load_extra_state(extras)
            module = inner.build_module()
            restore(module, stored, where=where)
        except FusionRecError:
            raise
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise ModelStateError(f"{where}: the compressed state does not fit model {self.config.base!r} ({type(e).__name__}: {e})") from None
        inner.module_ = module.to(inner.device_)
        inner.module_.eval()
        try:
            _after_restore(inner)
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise ModelStateError(f"{where}: the saved encoder weights do not fit model {self.config.base!r} ({type(e).__name__}: {e})") from None
        inner.fitted_ = True
        return inner


def _after_restore(inner: TorchRecommender) -> None:
    """What the base model's ``_set_state`` does after its module is restored: the text models
    load their fine-tuned encoder weights (kept in fp32: the encoder embeds search queries,
    scoring reads the cached item text vectors)."""
    after = getattr(inner, "_text_after_load", None)
    if callable(after):
        after()


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """numpy has no bfloat16: its bits travel as int16 (keys ending in ``.bf16``)."""
    t = t.detach().cpu().contiguous()
    return t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _from_numpy(key: str, a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    if key.endswith(".bf16"):
        if t.dtype != torch.int16:
            raise ModelStateError(f"state array {key!r} must hold bfloat16 bits as int16, got {a.dtype}")
        return t.view(torch.bfloat16)
    return t
