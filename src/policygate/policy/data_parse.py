"""One data file's document, parsed as OPA parses it: JSON, or YAML.

YAML's parser is imported only when a YAML file is parsed: a policy directory without one (such as
``rego/``) does not pay for it, about 25 ms of a cold CLI run (docs/benchmarks.md, "Cold start").
"""

from __future__ import annotations

import json
from typing import Any

from policygate.errors import InputError


class DataParseError(InputError):
    """A data file that does not parse: OPA's message, and where (row and column from 1; 0: unknown)."""

    def __init__(self, message: str, row: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message, self.row, self.col = message, row, col


def parse_document(path: str, content: bytes | str) -> Any:
    """The document in ``content``: JSON when ``path`` ends in ``.json``, else YAML."""
    if path.endswith(".json"):
        try:
            return json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataParseError(exc.msg, exc.lineno, exc.colno) from exc
        except ValueError as exc:
            raise DataParseError(str(exc)) from exc
    import yaml

    try:
        return yaml.safe_load(content)
    except ValueError as exc:
        raise DataParseError(str(exc)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise DataParseError(str(exc).splitlines()[0], row, col) from exc
