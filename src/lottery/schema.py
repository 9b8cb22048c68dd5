"""The config schema, ``workflow/schemas/config.schema.yaml``: the one place of every key's default and
description. ``config/README.md``'s key table is generated from it (:func:`key_table`,
``python -m lottery config-keys``; a test fails when the two differ), and the typed pieces of
:mod:`lottery.desc` and the paper's protocol (:mod:`lottery.protocol`) are checked against or read
from its defaults. No PyTorch or pandas."""

from __future__ import annotations

import functools
import json
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


def config_error(config: dict[str, Any]) -> str | None:
    """The config's first schema violation in one line - the key, its value, what is allowed - or
    None: what the workflow says instead of the validator's multi-line report."""
    from jsonschema import exceptions, validators

    schema = load()
    error = exceptions.best_match(validators.validator_for(schema)(schema).iter_errors(config))
    if error is None:
        return None
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    value = json.dumps(error.instance, default=str)
    value = value if len(value) <= 60 else value[:57] + "..."
    where = f"{key} = {value}" if key else "the configuration"
    described = error.schema.get("description", "").rstrip(".")
    return (
        f"{where}: {error.message}"
        + (f"; {key} is: {described}" if described else "")
        + " (config/README.md)"
    )
