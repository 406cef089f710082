"""`policygate --help` starts fast because the commands import what they use when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {
    "fastapi",
    "uvicorn",
    "mlflow",
    "azure",
    "sqlalchemy",
    "alembic",
    "opa_client",
    "aiohttp",
    "jwt",
    "rich",
}


def test_the_cli_imports_no_service_database_or_platform_library_until_a_command_runs() -> None:
    code = (
        "import sys, policygate.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    out = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_lists_every_command_without_them() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom policygate.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\nprint(r.output)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    out = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, check=True)
    for command in ("evaluate", "check", "serve", "log", "policy", "token", "waiver", "approve"):
        assert f"  {command} " in out.stdout
    assert out.stdout.strip().endswith("[]"), out.stdout[-300:]
