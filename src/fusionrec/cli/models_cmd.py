"""``fusionrec models [NAME]``: the registered models, one line each; or one model's parameters.

``fusionrec models`` prints one line per model (name, family, capabilities as short tags, the
first line of its docstring) that fits an 80-column terminal. ``fusionrec models NAME`` prints
that model's parameters (type, default and the field's doc), the shared Trainer settings in a
group of their own, and the deprecated names it still accepts. ``--json`` prints everything,
config schemas included.
"""

from __future__ import annotations

import json
import re
import textwrap
import typing
from typing import Any

import typer
from pydantic_core import PydanticUndefined

__all__ = ["CAPABILITY_TAGS", "listing_lines", "detail_lines", "models_cmd", "register"]

#: Capability flag -> the short tag ``fusionrec models`` prints ("needs" flags first; the two
#: cold-start flags print together as ``cold:i``, ``cold:u`` or ``cold:iu``).
CAPABILITY_TAGS: dict[str, str] = {
    "needs_text": "text",
    "needs_kg": "kg",
    "needs_user_features": "ufeat",
    "needs_item_features": "ifeat",
    "needs_timestamps": "time",
    "needs_ratings": "ratings",
    "sequential": "seq",
    "rating_prediction": "rate",
    "gpu": "gpu",
}

LEGEND = (
    "needs: text, kg, ufeat/ifeat (user/item features), time(stamps), ratings",
    "can: cold:i/u/iu (cold items/users), seq(uential), rate (ratings), gpu",
)


def _tags(caps: Any) -> str:
    flags = caps.as_dict()
    tags = [tag for key, tag in CAPABILITY_TAGS.items() if flags.get(key)]
    cold = ("i" if flags.get("cold_start_items") else "") + ("u" if flags.get("cold_start_users") else "")
    if cold:
        tags.insert(len([k for k in CAPABILITY_TAGS if k.startswith("needs_") and flags.get(k)]), f"cold:{cold}")
    return ",".join(tags) or "-"


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis, at a word break when one is near."""
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 0)]
    space = cut.rfind(" ")
    if space >= width - 12:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def listing_lines(width: int = 80) -> list[str]:
    """The ``fusionrec models`` table, each line at most ``width`` characters."""
    from fusionrec.models.registry import FAMILIES, list_models

    order = {f: n for n, f in enumerate(FAMILIES)}
    infos = sorted(list_models(), key=lambda i: (order.get(i.family, len(order)), i.name))
    rows = [(i.name, i.family, _tags(i.capabilities), i.summary.rstrip(".")) for i in infos]
    head = ("model", "family", "capabilities", "summary")
    w = [max(len(r[c]) for r in [*rows, head]) for c in range(3)]
    out = []
    for r in [head, *rows]:
        left = f"{r[0]:<{w[0]}} {r[1]:<{w[1]}} {r[2]:<{w[2]}} "
        out.append(_clip(left + r[3], width).rstrip())
    out.append("")
    out.extend(_clip(line, width) for line in LEGEND)
    out.append(_clip("fusionrec models NAME: a model's parameters", width))
    return out


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, tuple) and value and hasattr(value[0], "model_dump"):
        value = [v.model_dump(mode="json") for v in value]
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _field_lines(name: str, field: Any, width: int) -> list[str]:
    head = f"  {name}: {_type_name(field.annotation)} = {_default(field)}"
    lines = textwrap.wrap(head, width, subsequent_indent="      ", break_on_hyphens=False) or [head]
    doc = " ".join((field.description or "").split())
    if doc:
        lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return lines


def detail_lines(name: str, width: int = 80) -> list[str]:
    """``fusionrec models NAME``: the model's own parameters, then the Trainer settings."""
    from fusionrec.models.registry import family_of, get_model
    from fusionrec.training.config import TrainConfig

    cls = get_model(name)
    cfg = cls.Config
    doc = (cls.__doc__ or "").strip().splitlines()
    out = textwrap.wrap(f"{cls.name} ({family_of(cls)}): {doc[0] if doc else ''}".rstrip(": "), width)
    out.append(_clip(f"capabilities: {_tags(cls.capabilities)}", width))
    if cls.needs_configuration:
        out += textwrap.wrap(f"needs configuration: {cls.needs_configuration}", width)
    trainer = issubclass(cfg, TrainConfig)
    own = [(n, f) for n, f in cfg.model_fields.items() if not (trainer and n in TrainConfig.model_fields)]
    shared = [(n, f) for n, f in cfg.model_fields.items() if trainer and n in TrainConfig.model_fields]
    out += ["", "Model parameters" if own else "Model parameters: none"]
    for n, f in own:
        out += _field_lines(n, f, width)
    if shared:
        out += ["", "Trainer settings (shared by every torch model; this model's defaults)"]
        for n, f in shared:
            out += _field_lines(n, f, width)
        out += [""] + textwrap.wrap(
            "Run options (device, cpu_threads, progress, run_dir, resume, callbacks) are not "
            "parameters: pass fit(..., options=FitOptions(...)).",
            width,
        )
    aliases = cfg.aliases()
    if aliases:
        pairs = ", ".join(f"{old} -> {new}" for old, new in aliases.items())
        out += [""] + textwrap.wrap(f"Deprecated names still accepted: {pairs}", width, subsequent_indent="  ")
    return out


def models_cmd(
    name: str | None = typer.Argument(None, help="Show this model's parameters."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON incl. config schemas."),
) -> None:
    """List registered models (one line each), or one model's parameters."""
    from fusionrec.models.registry import get_model, list_models

    if as_json:
        infos = list_models()
        if name is not None:
            cls = get_model(name)
            infos = [i for i in infos if i.cls is cls]
        typer.echo(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "family": i.family,
                        "summary": i.summary,
                        "capabilities": i.capabilities.as_dict(),
                        "deprecated_names": i.cls.Config.aliases(),
                        "config": i.config_schema,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return
    for line in listing_lines() if name is None else detail_lines(name):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
