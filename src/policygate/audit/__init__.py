"""Continuous audit: re-decide every model in use against the current policy, and name what went
around the gate (docs/audit.md)."""
