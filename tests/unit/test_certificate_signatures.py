"""Certificate-based OpenSSF model signing (model-signing 1.1.1, offline): a signature whose signing
certificate chains to a configured authority verifies as that authority's signer, with the certificate's
subject recorded; any other authority, a changed file, or an authority list left empty does not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from policygate.config.integrity import ArtifactSettings
from policygate.integrity.signature import verify_signature

NOW = dt.datetime.now(dt.UTC)


def name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def authority(directory: Path, common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(common))
        .issuer_name(name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert, write_cert(cert, directory / f"{common}.pem")


def signing_certificate(
    directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, common: str
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    return write_key(key, directory / f"{common}.key"), write_cert(cert, directory / f"{common}.pem")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(bytes(range(256)) * 16)
    return root


def test_a_certificate_signature_verifies_against_its_authority_only(model: Path, tmp_path: Path) -> None:
    import model_signing

    ca_key, ca, ca_pem = authority(tmp_path, "Contoso ML Signing CA")
    _, _, other_pem = authority(tmp_path, "Fabrikam CA")
    key, cert = signing_certificate(tmp_path, ca_key, ca, "training-pipeline")
    model_signing.signing.Config().use_certificate_signer(
        private_key=key, signing_certificate=cert, certificate_chain=[ca_pem]
    ).sign(model, model / "model.sig")

    verified = verify_signature(model, {}, {"fabrikam": [other_pem], "contoso-ml": [ca_pem]})
    assert verified.status == "verified" and verified.signer == "contoso-ml"
    assert verified.method == "certificate" and verified.certificate == "CN=training-pipeline,O=Contoso"

    refused = verify_signature(model, {}, {"fabrikam": [other_pem]})
    assert refused.status == "invalid" and refused.signer is None and refused.error
    assert refused.error.startswith("fabrikam: ")

    (model / "model.pkl").write_bytes(b"replaced")
    assert verify_signature(model, {}, {"contoso-ml": [ca_pem]}).status == "invalid"


def test_an_authority_without_certificates_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty chain would make model-signing trust the operating system's roots: every publicly
    issued certificate would verify as that signer."""
    with pytest.raises(ValidationError, match="no certificate authority given for signer"):
        ArtifactSettings(signing_certificates={"contoso-ml": []})
    monkeypatch.setenv("POLICYGATE_ARTIFACTS__SIGNING_CERTIFICATES", '{"contoso-ml": ["/keys/ca.pem"]}')
    from policygate.config import Settings

    assert Settings().artifacts.signing_certificates == {"contoso-ml": [Path("/keys/ca.pem")]}
