"""An OpenSSF model-signing signature over a model's files (``model.sig`` among them), verified offline
against the public keys configured by name (POLICYGATE_ARTIFACTS__SIGNING_KEYS): the name of the key
that verifies it is the signer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from policygate.evidence import ArtifactSignature
from policygate.integrity.manifest import NOT_MODEL_FILES, SIGNATURE_FILE


def verify_signature(root: Path, keys: Mapping[str, Path]) -> ArtifactSignature:
    signature = root / SIGNATURE_FILE
    if not signature.is_file():
        return ArtifactSignature(status="absent")
    if not keys:
        return ArtifactSignature(status="unchecked")
    import model_signing

    problems: list[str] = []
    for name, public_key in keys.items():
        try:
            config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
            ignored = [(root / name).resolve() for name in NOT_MODEL_FILES]
            ignore = model_signing.hashing.Config().set_ignored_paths(paths=ignored)
            config.set_hashing_config(ignore).verify(root.resolve(), signature.resolve())
        except Exception as exc:  # noqa: BLE001 - any failure to verify is "invalid", never a pass
            problems.append(f"{name}: {_first_line(exc)}")
            continue
        return ArtifactSignature(status="verified", signer=name)
    return ArtifactSignature(status="invalid", error="; ".join(problems)[:1024])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
