"""policygate: a policy-as-code promotion gate for ML models."""

__version__ = "0.1.0"
