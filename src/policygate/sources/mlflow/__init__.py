"""MLflow tracking server / model registry -> evidence parts (source.py says how).

The package's seams: ``source`` collects, ``mapping`` turns what the MLflow client answered into
evidence fields (pure), ``cache`` keeps what surrounds a version for a few seconds, ``artifacts``
hashes a version's files, ``aliases`` asks where an alias points now.
"""

from policygate.sources.mlflow.source import MlflowSource

__all__ = ["MlflowSource"]
