"""A policy data file's document (policygate.policy.data_parse): JSON or YAML, and where a file that
does not parse goes wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from policygate.policy.data_parse import DataParseError, parse_document


def test_json_and_yaml_documents() -> None:
    assert parse_document("rego/data.json", b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_document("rego/data.yaml", "a:\n  - 1\n  - 2\n") == {"a": [1, 2]}
    assert parse_document("rego/extra.yml", b"b: true\n") == {"b": True}
    assert parse_document("rego/empty.yaml", "") is None  # OPA loads nothing from it


@pytest.mark.parametrize(
    ("path", "content", "row", "col"),
    [
        ("data.json", b'{\n  "a": 1,\n}', 3, 1),
        ("data.json", b"\xff", 0, 0),  # not UTF-8: no position
        ("data.yaml", "policygate_params: [\n", 2, 1),
        ("data.yaml", "a: 1\n b: 2\n", 2, 3),
    ],
)
def test_a_file_that_does_not_parse_says_where(path: str, content: bytes | str, row: int, col: int) -> None:
    with pytest.raises(DataParseError) as raised:
        parse_document(path, content)
    assert (raised.value.row, raised.value.col) == (row, col)
    assert raised.value.message and "\n" not in raised.value.message


def test_json_alone_never_imports_the_yaml_parser() -> None:
    code = (
        "import sys\nfrom policygate.policy.data_parse import parse_document\n"
        "parse_document('data.json', b'{}')\nprint('yaml' in sys.modules)\n"
        "parse_document('data.yaml', 'a: 1')\nprint('yaml' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
