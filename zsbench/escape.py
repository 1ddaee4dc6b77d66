"""Strings read from files (result and bench JSONs), made safe for the Markdown and CSV zsbench writes.

A result's dataset, model or checkpoint name is whatever its file says. Written verbatim, a `|`
or a newline breaks a Markdown table, `<script>` is HTML, `![](http://...)` makes a viewer fetch a
remote image, and a CSV cell starting with `=` is a formula a spreadsheet runs.
"""

from __future__ import annotations

import re
from typing import Any

# Markdown's punctuation that can start a link, an image, emphasis, code, a strikethrough or a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
# An underscore between two letters or digits never starts emphasis (GitHub's rule), so names keep their look.
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Cells a spreadsheet reads as a formula (or, after a tab or carriage return, as one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def markdown_text(value: Any) -> str:
    """`value` as literal text in Markdown (a table cell, a heading, image alt text): control characters
    and line breaks become a space, HTML's `& < >` become entities, and the characters that would start
    Markdown syntax are backslash-escaped."""
    text = _CONTROL.sub(" ", str(value))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _EDGE_UNDERSCORE.sub(r"\\_", text)
    return "".join(_HTML.get(char, char) for char in text)


def csv_cell(value: Any) -> Any:
    """`value` for a CSV cell: a string that a spreadsheet would run as a formula gets a leading `'`;
    numbers are kept (a negative number is not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
