"""Key pairs made in tests, written as PEM files (PKCS#8 private, SubjectPublicKeyInfo public)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization


def pem_pair(key: Any, directory: Path, name: str) -> tuple[Path, Path]:
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def rsa_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """An RSA key pair (what `opa build --signing-key` takes for RS256, and its public half)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), directory, name)
