"""The in-process OPA's collector target: GOGC when the user set it, else 400 (docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from policygate.engine.inproc import GOGC_DEFAULT, gc_percent


@pytest.mark.parametrize(
    ("gogc", "percent"),
    [
        (None, GOGC_DEFAULT),
        ("", GOGC_DEFAULT),
        ("100", 100),
        (" 250 ", 250),
        ("off", -1),
        ("OFF", -1),
        ("lots", GOGC_DEFAULT),
        ("-5", GOGC_DEFAULT),
    ],
)
def test_gogc_or_the_default(gogc: str | None, percent: int) -> None:
    assert gc_percent(gogc) == percent
    assert GOGC_DEFAULT == 400
