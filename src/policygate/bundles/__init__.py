"""OPA bundles of the policies and parameters: built signed by policygate, served to OPA sidecars."""
