"""``policygate log``: verify the chain, show a model's governed record, export for auditors and OPA
tools, sign checkpoints, pack a version's evidence. One module per subcommand, listed here.

Exit codes: ``verify`` 0 intact, 1 tampered; ``show`` 0 found, 1 nothing recorded; every command 2
for bad input or a log that cannot be read. The commands that only read never create a log, nor
migrate the one they audit.
"""

from __future__ import annotations

from policygate.cli.common import Command, add_commands, group
from policygate.cli.log import checkpoint, export, pack, show, verify

log_app = group(
    help="The decision log: verify it was not altered, show a model's record, export it.",
)

COMMANDS: tuple[tuple[str, Command], ...] = (
    ("verify", verify.verify),
    ("checkpoint", checkpoint.checkpoint),
    ("checkpoint-reset", checkpoint.checkpoint_reset),
    ("show", show.show),
    ("export", export.export),
    ("pack", pack.pack),
)
add_commands(log_app, COMMANDS)
