"""policygate command line: exit 0 allow, 1 deny, 2 could not decide (or bad input).

One module per command, named after it (a group's subcommands in its module, or in its package for
``log``); every command is registered in :data:`COMMANDS`, in the order ``--help`` lists them.
Commands import what they use when they run, so ``--help`` starts fast. ``app`` (a Click group,
docs/python-api.md) and ``main`` (the ``policygate`` script) are the entry points.
"""

from __future__ import annotations

import logging

from policygate.cli import (
    approve,
    attest,
    audit,
    bundle,
    check,
    collector,
    demo,
    evaluate,
    evidence,
    key,
    policy,
    register,
    replay,
    report,
    retire,
    review,
    schema,
    serve,
    token,
    waiver,
    witness,
)
from policygate.cli.common import Command, add_commands, group
from policygate.cli.log import log_app

app = group(
    help="Policy-as-code promotion gate for ML models.",
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMANDS: tuple[tuple[str, Command], ...] = (
    ("evaluate", evaluate.evaluate),
    ("check", check.check),
    ("replay", replay.replay),
    ("schema", schema.schema),
    ("serve", serve.serve),
    ("demo", demo.demo),
    ("witness", witness.witness),
    ("approve", approve.approve),
    ("review", review.review),
    ("retire", retire.retire),
    ("unretire", retire.unretire),
    ("register", register.register),
    ("policy", policy.policy_app),
    ("waiver", waiver.waiver_app),
    ("evidence", evidence.evidence_app),
    ("log", log_app),
    ("audit", audit.audit_app),
    ("report", report.report_app),
    ("attest", attest.attest_app),
    ("token", token.token_app),
    ("key", key.key_app),
    ("bundle", bundle.bundle_app),
)
add_commands(app, COMMANDS)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    collector.for_a_command()
    try:
        app()
    finally:
        collector.at_exit()


__all__ = ["COMMANDS", "app", "main"]
