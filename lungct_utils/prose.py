"""The reports' words, kept apart from their logic: Markdown templates filled from figures.

Each file ``lungct_utils/templates/<name>.md`` holds named passages. A passage starts
with a line ``<!-- key -->`` and runs to the next such line; its text is a
:meth:`str.format` template (``{value:.1f}``; a literal brace is doubled). Code chooses a
passage by the numbers (``"verdict_reproduced"`` or ``"verdict_not_reproduced"``) and
fills it; the words themselves live only in the template.
"""

from __future__ import annotations

import re
import string
from functools import cache
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
_MARKER = re.compile(r"^<!-- ([a-z0-9_]+) -->$", re.M)


@cache
def passages(name: str) -> dict[str, str]:
    """Every passage of one template file.

    Args:
        name: the file's stem under :data:`TEMPLATES`.

    Returns:
        key -> template text (surrounding blank lines stripped).
    """
    path = TEMPLATES / f"{name}.md"
    if not path.is_file():
        raise ValueError(f"prose: no template file {path}")
    text = path.read_text(encoding="utf-8")
    parts = _MARKER.split(text)
    if parts[0].strip():
        raise ValueError(f"prose: {path} has text before its first <!-- key --> marker")
    keys = parts[1::2]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"prose: {path} repeats the keys {duplicated}")
    return {k: v.strip("\n") for k, v in zip(keys, parts[2::2], strict=True)}


def fields(name: str, key: str) -> set[str]:
    """The names a passage expects (``{n}``, ``{value:.1f}``: ``n``, ``value``).

    Args:
        name: the template file's stem.
        key: the passage.

    Returns:
        The field names.
    """
    return {f for _, f, _, _ in string.Formatter().parse(text(name, key)) if f}


def text(name: str, key: str) -> str:
    """One passage, unfilled.

    Args:
        name: the template file's stem.
        key: the passage.

    Returns:
        Its template text.
    """
    found = passages(name)
    if key not in found:
        raise ValueError(f"prose: {name}.md has no passage {key!r} (has {sorted(found)})")
    return found[key]


def fill(name: str, key: str, /, **values) -> str:
    """One passage filled with figures.

    Args:
        name: the template file's stem.
        key: the passage.
        **values: its fields.

    Returns:
        The text.
    """
    template = text(name, key)
    missing = {f.split(".")[0].split("[")[0] for f in fields(name, key)} - set(values)
    if missing:
        raise ValueError(f"prose: {name}.md passage {key!r} needs {sorted(missing)}")
    return template.format(**values)
