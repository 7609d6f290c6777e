"""The policy interface: decisions with propensities, batched updates, safetensors state.

A round offers a policy a candidate list, best first as the recommender ranked it:
``arms`` (global arm ids, e.g. item indices, shape ``(n,)``) and, for contextual policies,
``contexts`` (one feature row per candidate, shape ``(n, dim)``). ``select`` returns a
:class:`Decision`: the chosen candidate positions in slate order and, for each, the
probability that the policy puts that candidate at that slot given the slots before it
(for ``k=1`` the ordinary propensity). ``update`` takes the rewards of played arms.

Randomness is always an explicit ``numpy.random.Generator`` (or an int seed) passed in; a
policy never touches global RNG state. Saved state is a folder with ``policy.json`` (name,
params, format version) and ``state.safetensors`` (arrays only), never pickle.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from fusionrec._fsutil import replace_dir
from fusionrec.errors import ConfigError, FusionRecError, ModelStateError

__all__ = [
    "BanditInputError",
    "Decision",
    "Policy",
    "PolicyConfig",
    "POLICIES",
    "register_policy",
    "make_policy",
    "load_policy",
    "as_generator",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1


class BanditInputError(FusionRecError, ValueError):
    """Bad input to a policy or an estimator (wrong context width, propensity 0 or > 1, ...)."""


class PolicyConfig(BaseModel):
    """Base of every policy's typed config (frozen, unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True)
class Decision:
    """One round's choice.

    Attributes:
        positions: chosen candidate positions (into the round's candidate list), slate order.
        arms: the chosen arm ids (``arms[positions]``).
        propensities: for each slot, the probability that the policy fills it with that
            candidate given the candidates placed in the earlier slots (exact for rule
            policies, a Monte-Carlo estimate for Thompson sampling).
    """

    positions: np.ndarray
    arms: np.ndarray
    propensities: np.ndarray


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """An explicit Generator: a Generator is used as is, an int seeds a new one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise BanditInputError("pass an explicit numpy Generator or an int seed (rng=...)")
    if isinstance(rng, int | np.integer):
        return np.random.default_rng(int(rng))
    raise BanditInputError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


POLICIES: dict[str, type[Policy]] = {}


def register_policy(name: str):
    """Class decorator: make the policy available to :func:`make_policy` under ``name``."""

    def deco(cls: type[Policy]) -> type[Policy]:
        if name in POLICIES and POLICIES[name] is not cls:
            raise ConfigError(f"policy name {name!r} is already registered by {POLICIES[name].__name__}")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return deco


def make_policy(name: str, **params: Any) -> Policy:
    """A new policy by registered name (``linucb``, ``lints``, ``egreedy``, ``softmax``,
    ``ucb1``, ``ts``, ``greedy``, ``random``) with its parameters."""
    cls = POLICIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown policy {name!r}; known policies: {', '.join(sorted(POLICIES))}")
    return cls(**params)


class Policy(ABC):
    """Base of all policies. Subclasses set ``Config``, ``contextual`` and implement
    ``_select``, ``_update`` and the state pair ``_get_state``/``_set_state``."""

    name: ClassVar[str] = "policy"
    Config: ClassVar[type[PolicyConfig]] = PolicyConfig
    #: True: ``contexts`` are required, ``(n, dim)``; False: contexts are ignored.
    #: (A class default; a policy whose estimator is chosen by config sets it per instance.)
    contextual: bool = False
    #: True: per-arm statistics, ``arms`` must lie in ``[0, n_arms)``.
    uses_arm_ids: bool = False

    def __init__(self, config: PolicyConfig | dict | None = None, **params: Any) -> None:
        try:
            if config is None:
                config = self.Config(**params)
            elif isinstance(config, dict):
                config = self.Config(**{**config, **params})
            elif params:
                config = self.Config(**{**config.model_dump(), **params})
        except ValidationError as e:
            msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}" for err in e.errors())
            raise ConfigError(f"invalid parameters for policy {self.name!r}: {msgs}") from None
        if not isinstance(config, self.Config):
            raise ConfigError(f"policy {self.name!r} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.t = 0  # rounds (updates) seen
        #: Id of the last stored feedback event folded into this state (-1: none); saved with it.
        self.last_event_id = -1
        self._init_state()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # ------------------------------------------------------------ interface
    @abstractmethod
    def _init_state(self) -> None: ...

    @abstractmethod
    def _select(self, arms: np.ndarray, contexts: np.ndarray | None, k: int, rng: np.random.Generator) -> Decision: ...

    @abstractmethod
    def _probabilities(
        self, arms: np.ndarray, contexts: np.ndarray | None, rng: np.random.Generator | None
    ) -> np.ndarray: ...

    @abstractmethod
    def _update(self, arms: np.ndarray, contexts: np.ndarray | None, rewards: np.ndarray) -> None: ...

    @abstractmethod
    def _get_state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None: ...

    @property
    def dim(self) -> int | None:
        """Context width a contextual policy expects (None: contexts ignored)."""
        return getattr(self.config, "dim", None) if self.contextual else None

    @property
    def n_arms(self) -> int | None:
        return getattr(self.config, "n_arms", None) if self.uses_arm_ids else None

    def select(
        self,
        arms: np.ndarray,
        contexts: np.ndarray | None = None,
        k: int = 1,
        rng: np.random.Generator | int | None = None,
    ) -> Decision:
        """Choose ``k`` of the candidates (a slate, best first) with their propensities."""
        arms, contexts = self._check_round(arms, contexts)
        if not isinstance(k, int | np.integer) or k < 1:
            raise BanditInputError(f"k must be a positive int, got {k!r}")
        k = min(int(k), len(arms))
        return self._select(arms, contexts, k, as_generator(rng))

    def probabilities(
        self, arms: np.ndarray, contexts: np.ndarray | None = None, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """Probability of each candidate being chosen first, shape ``(n,)`` (sums to 1).

        Exact for rule policies; Thompson sampling estimates it from draws and needs ``rng``."""
        arms, contexts = self._check_round(arms, contexts)
        return self._probabilities(arms, contexts, None if rng is None else as_generator(rng))

    def update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None = None) -> None:
        """Learn from played arms: ``arms (m,)``, ``rewards (m,)``, ``contexts (m, dim)`` of those arms."""
        arms, contexts = self._check_round(arms, contexts, what="update")
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if rewards.shape[0] != arms.shape[0]:
            raise BanditInputError(f"update got {arms.shape[0]} arms but {rewards.shape[0]} rewards")
        if not np.all(np.isfinite(rewards)):
            raise BanditInputError("rewards must be finite numbers")
        if arms.shape[0] == 0:
            return
        self._update(arms, contexts, rewards)
        self.t += int(arms.shape[0])

    def _check_round(
        self, arms: np.ndarray, contexts: np.ndarray | None, what: str = "round"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        arms = np.asarray(arms)
        if arms.ndim != 1:
            raise BanditInputError(f"{what}: arms must be a 1-d array of arm ids, got shape {arms.shape}")
        if arms.size and not np.issubdtype(arms.dtype, np.integer):
            raise BanditInputError(f"{what}: arms must be integer arm ids, got dtype {arms.dtype}")
        arms = arms.astype(np.int64, copy=False)
        if what == "round" and arms.size == 0:
            raise BanditInputError("round: no candidates to choose from")
        n_arms = self.n_arms
        if n_arms is not None and arms.size and (arms.min() < 0 or arms.max() >= n_arms):
            bad = arms[(arms < 0) | (arms >= n_arms)][0]
            raise BanditInputError(f"{what}: arm id {int(bad)} outside [0, {n_arms}) of policy {self.name!r}")
        if not self.contextual:
            return arms, None
        if contexts is None:
            raise BanditInputError(f"{what}: policy {self.name!r} is contextual and needs contexts of width {self.dim}")
        contexts = np.asarray(contexts, dtype=np.float64)
        if contexts.ndim != 2 or contexts.shape[0] != arms.shape[0]:
            raise BanditInputError(
                f"{what}: contexts must have shape ({arms.shape[0]}, {self.dim}) (one row per arm), got {contexts.shape}"
            )
        if contexts.shape[1] != self.dim:
            raise BanditInputError(
                f"{what}: context has width {contexts.shape[1]}, policy {self.name!r} expects {self.dim}"
            )
        if not np.all(np.isfinite(contexts)):
            raise BanditInputError(f"{what}: contexts contain NaN or inf")
        return arms, contexts

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        state = {k: np.ascontiguousarray(v) for k, v in self._get_state().items()}
        state["_t"] = np.asarray([self.t], dtype=np.int64)
        state["_last_event_id"] = np.asarray([self.last_event_id], dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        t = state.pop("_t", None)
        last = state.pop("_last_event_id", None)
        self._set_state(state)
        self.t = int(t[0]) if t is not None else 0
        self.last_event_id = int(last[0]) if last is not None else -1

    def save(self, path: str | Path) -> Path:
        """Write ``policy.json`` + ``state.safetensors`` to the folder ``path`` (atomically)."""
        from safetensors.numpy import save_file

        from fusionrec import __version__

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        meta = {
            "policy": self.name,
            "params": self.config.model_dump(mode="json"),
            "format_version": FORMAT_VERSION,
            "fusionrec_version": __version__,
        }
        (tmp / "policy.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        save_file(self.state_dict(), str(tmp / "state.safetensors"))
        replace_dir(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load a policy folder written by :meth:`save` (``Policy.load`` works for any policy)."""
        return load_policy(path, expect=None if cls is Policy else cls)


def load_policy(path: str | Path, expect: type[Policy] | None = None) -> Policy:
    """Load any saved policy folder (the name in ``policy.json`` picks the class)."""
    from safetensors.numpy import load_file

    path = Path(path)
    meta_file = path / "policy.json"
    if not meta_file.is_file():
        raise ModelStateError(f"{path} is not a saved policy folder (no policy.json)")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise ModelStateError(f"{meta_file}: not valid JSON ({e})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelStateError(f"{meta_file}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    policy = make_policy(str(meta.get("policy")), **meta.get("params", {}))
    if expect is not None and not isinstance(policy, expect):
        raise ModelStateError(f"{path} holds a {meta.get('policy')!r} policy, not {expect.name!r}")
    state_file = path / "state.safetensors"
    if not state_file.is_file():
        raise ModelStateError(f"{path}: state.safetensors is missing")
    policy.load_state_dict(load_file(str(state_file)))
    return policy
