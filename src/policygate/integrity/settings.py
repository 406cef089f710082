"""``ArtifactSettings`` lives in :mod:`policygate.config.integrity` (the configuration imports no
feature package); this path stays because docs/python-api.md names it."""

from policygate.config.integrity import ArtifactSettings

__all__ = ["ArtifactSettings"]
