"""The config schema, ``workflow/schemas/config.schema.yaml``: the one place of every key's default and
description. ``config/README.md``'s key table is generated from it (:func:`key_table`,
``python -m lottery config-keys``; a test fails when the two differ), and the typed pieces of
:mod:`lottery.desc` and the paper's protocol (:mod:`lottery.protocol`) are checked against or read
from its defaults. No PyTorch or pandas."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
BEGIN = "<!-- keys: generated from workflow/schemas/config.schema.yaml by `python -m lottery config-keys --write`; do not edit -->"  # noqa: E501
END = "<!-- end of generated keys -->"
LONG_DEFAULT = 40  # characters: a longer default is named by its `default_shown` text instead


@functools.cache
def load() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def _is_section(node: dict[str, Any]) -> bool:
    """An object whose keys each have a default: its keys get rows of their own."""
    props = node.get("properties")
    return node.get("type") == "object" and bool(props) and all("default" in p for p in props.values())


def defaults(node: dict[str, Any] | None = None) -> Any:
    """The configuration an empty config file gets: every key at its default."""
    node = load() if node is None else node
    if _is_section(node):
        return {key: defaults(child) for key, child in node["properties"].items()}
    return node.get("default")


def default(path: str) -> Any:
    """The default of one key, e.g. ``default("training.learning_rate")``."""
    value = defaults()
    for part in path.split("."):
        value = value[part]
    return value


def _leaves(node: dict[str, Any], prefix: str = ""):
    for key, child in node["properties"].items():
        path = f"{prefix}{key}"
        if _is_section(child):
            yield from _leaves(child, f"{path}.")
        else:
            yield path, child


def _inline(value: Any) -> str:
    """A default as one would write it in the YAML config."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def key_table() -> str:
    """The Markdown table of every key: its default and its description."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for path, node in _leaves(load()):
        shown = _inline(node.get("default"))
        cell = node["default_shown"] if len(shown) > LONG_DEFAULT else f"`{shown}`"
        description = " ".join(node["description"].split()).replace("|", "\\|")
        rows.append(f"| `{path}` | {cell} | {description} |")
    return "\n".join(rows) + "\n"


def with_key_table(readme: str) -> str:
    """``readme`` with the text between its key-table markers replaced by :func:`key_table`."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"no key-table markers ({BEGIN!r} ... {END!r}) in the README")
    return pattern.sub(lambda _: f"{BEGIN}\n{key_table()}{END}", readme)


def _key(path) -> str:
    """A config key as the README names it: ``pruning.schedules[0].rate``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _described(path: tuple, node: dict[str, Any] | None) -> str:
    """What the key at ``path`` is, from its schema ``node`` (a list's entry: from the list's)."""
    while not (node or {}).get("description") and path and isinstance(path[-1], int):
        path = path[:-1]
        node = _node(path)
    described = (node or {}).get("description", "").rstrip(".")
    shown = f"; {_key(path)} is: " + " ".join(described.split()) if described and path else ""
    return shown + " (config/README.md)"


def _message(error: Any) -> str:
    """The validator's message, without the whole text of a long list."""
    if error.validator == "maxItems":
        return f"{len(error.instance)} entries, more than the maximum of {error.validator_value}"
    if error.validator == "uniqueItems":
        seen: set[str] = set()
        repeated = []
        for item in error.instance:
            text = json.dumps(item, default=str)
            if text in seen and text not in repeated:
                repeated.append(text)
            seen.add(text)
        return f"{', '.join(repeated)} given more than once (each value at most once)"
    return error.message


def config_error(config: dict[str, Any]) -> str | None:
    """The config's first schema violation in one line - the key, its value, what is allowed - or
    None: what the workflow says instead of the validator's multi-line report."""
    from jsonschema import exceptions, validators

    schema = load()
    error = exceptions.best_match(validators.validator_for(schema)(schema).iter_errors(config))
    if error is None:
        return None
    path = tuple(error.absolute_path)
    where = f"{_key(path)} = {_shown(error.instance)}" if path else "the configuration"
    return f"{where}: {_message(error)}" + _described(path, error.schema)


def _node(path: tuple) -> dict[str, Any] | None:
    """The schema of the config key at ``path`` (None where the schema does not say)."""
    root = node = load()
    for part in path:
        if "$ref" in node:
            node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
        if not isinstance(node, dict):
            return None
    return node


def _numbers(value: Any, path: tuple = ()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _numbers(child, (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, child in enumerate(value):
            yield from _numbers(child, (*path, i))
    elif isinstance(value, float):
        yield path, value


def non_finite_error(config: dict[str, Any]) -> str | None:
    """The config's first number that is not finite (NaN, infinity) in one line as
    :func:`config_error` gives it, or None. Every key refuses them, in this one place: NaN compares
    false to every bound of the schema, and infinity passes a lower one."""
    for path, value in _numbers(config):
        if not math.isfinite(value):
            return f"{_key(path)} = {_shown(value)}: not a finite number" + _described(path, _node(path))
    return None
