"""The artifact that ships is the artifact that was approved: manifests of model files, and signed
attestations of release decisions a deploy step checks offline (docs/integrity.md)."""
