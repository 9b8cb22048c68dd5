"""Text made from data for Markdown and the HTML report: a value read from a file (a commit named by
an environment variable, a CPU's model name, a variant) is shown as text, never as markup."""

from __future__ import annotations

import html

MAX_CELL = 200  # characters of one cell; a longer value is cut (with "...")


def markdown_cell(value: object) -> str:
    """``value`` as the text of one Markdown table cell: on one line, its ``|`` and backslashes
    escaped, HTML's special characters as entities, at most :data:`MAX_CELL` characters."""
    text = " ".join(str(value).split())  # newlines and tabs would end the row or the table
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 3] + "..."
    text = html.escape(text, quote=False)
    for char in ("\\", "|", "`", "*", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text
