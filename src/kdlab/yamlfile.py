"""Reading YAML files strictly: a duplicate key or a syntax error names the file, line and column.

PyYAML's safe loader silently keeps the last of two equal keys (a second `kd:` block
would replace the first); here that is an error naming both lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from kdlab.typed import ParamsError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                first = seen[key]
                raise ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first at line {first.line + 1}, column {first.column + 1}; "
                    f"again at line {key_node.start_mark.line + 1}, column {key_node.start_mark.column + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text``; a syntax error or duplicate key is a :class:`ParamsError` naming ``source``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = exc.problem if isinstance(exc, ConstructorError) else f"{exc.context or ''} {exc.problem}".strip()
        raise ParamsError(f"{where}: not valid YAML: {what}; fix the file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{source}: not valid YAML ({exc}); fix the file") from None


def load_yaml(path: str | Path, hint: str = "") -> Any:
    """Read and parse a YAML file strictly (see :func:`parse_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found" + (f"; {hint}" if hint else "")) from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    return parse_yaml(text, str(path))
