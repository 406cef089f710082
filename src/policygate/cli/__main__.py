"""``python -m policygate.cli``: the ``policygate`` command."""

from policygate.cli import main

main()
