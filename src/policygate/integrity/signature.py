"""An OpenSSF model-signing signature over a model's files (``model.sig`` among them), verified offline
against the public keys (POLICYGATE_ARTIFACTS__SIGNING_KEYS) and the certificate authorities
(POLICYGATE_ARTIFACTS__SIGNING_CERTIFICATES) configured by name: the name of the key or authority that
verifies it is the signer; for a certificate, its subject is recorded too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

from policygate.evidence import ArtifactSignature
from policygate.integrity.manifest import NOT_MODEL_FILES, SIGNATURE_FILE


def verify_signature(
    root: Path, keys: Mapping[str, Path], certificates: Mapping[str, list[Path]] | None = None
) -> ArtifactSignature:
    signature = root / SIGNATURE_FILE
    if not signature.is_file():
        return ArtifactSignature(status="absent")
    if not keys and not certificates:
        return ArtifactSignature(status="unchecked")
    import model_signing

    ignored = [(root / name).resolve() for name in NOT_MODEL_FILES]
    problems: list[str] = []
    for name, method, verifier in _verifiers(keys, certificates or {}):
        try:
            config = verifier(model_signing.verifying.Config())
            ignore = model_signing.hashing.Config().set_ignored_paths(paths=ignored)
            config.set_hashing_config(ignore).verify(root.resolve(), signature.resolve())
        except Exception as exc:  # noqa: BLE001 - any failure to verify is "invalid", never a pass
            problems.append(f"{name}: {_first_line(exc)}")
            continue
        subject = _certificate_subject(signature) if method == "certificate" else None
        return ArtifactSignature(status="verified", signer=name, method=method, certificate=subject)
    return ArtifactSignature(status="invalid", error="; ".join(problems)[:1024])


Verifier = Callable[[Any], Any]
Method = Literal["key", "certificate"]


def _verifiers(
    keys: Mapping[str, Path], certificates: Mapping[str, list[Path]]
) -> Iterator[tuple[str, Method, Verifier]]:
    for name, public_key in keys.items():
        yield name, "key", partial(_with_key, public_key=public_key)
    for name, chain in certificates.items():
        if chain:  # never an empty chain: model-signing would trust the operating system's roots
            yield name, "certificate", partial(_with_chain, chain=chain)


def _with_key(config: Any, public_key: Path) -> Any:
    return config.use_elliptic_key_verifier(public_key=public_key)


def _with_chain(config: Any, chain: list[Path]) -> Any:
    return config.use_certificate_verifier(certificate_chain=chain)


def _certificate_subject(signature: Path) -> str | None:
    """The subject of the signing certificate (the first of the bundle's chain), read after the
    signature verified; None if it cannot be read (the verification stands)."""
    import base64
    import binascii

    from cryptography import x509

    try:
        bundle = json.loads(signature.read_text())
        raw = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"]
        der = base64.b64decode(raw)
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:  # model-signing 1.1 stores the DER base64-encoded twice
            certificate = x509.load_der_x509_certificate(base64.b64decode(der))
        return certificate.subject.rfc4514_string()[:1024]
    except (OSError, ValueError, KeyError, IndexError, TypeError, binascii.Error):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
