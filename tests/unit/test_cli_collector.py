"""Python's collector over a command's life (policygate.cli.collector): a command runs with the
higher first-generation threshold and ends frozen; a server goes back to the defaults."""

from __future__ import annotations

import subprocess
import sys

from policygate.cli.collector import DEFAULTS, FIRST_GENERATION


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def test_a_command_runs_with_the_higher_threshold_and_ends_frozen() -> None:
    seen = _run(
        "import gc\n"
        "from policygate import cli\n"
        "def probe():\n"  # the command line, replaced: what a command sees while it runs
        "    print('during', gc.get_threshold()[0], gc.get_freeze_count() > 0)\n"
        "    raise SystemExit(0)\n"
        "cli.app = probe\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('after', gc.get_threshold()[0], gc.get_freeze_count() > 0)\n"
    )
    assert seen.splitlines() == [f"during {FIRST_GENERATION} False", f"after {FIRST_GENERATION} True"]
    assert DEFAULTS[0] < FIRST_GENERATION


def test_a_server_goes_back_to_the_defaults_with_its_start_frozen() -> None:
    seen = _run(
        "import gc\n"
        "from policygate.cli import collector\n"
        "collector.for_a_command()\n"
        "collector.for_a_service()\n"
        "print(gc.get_threshold() == collector.DEFAULTS, gc.get_freeze_count() > 0)\n"
    )
    assert seen == "True True"
