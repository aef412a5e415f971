"""DICOM over TLS (PS3.15 Annex B, the BCP 195 profiles): the contexts our SCP and SCU use.

Settings come from `DicomSettings.tls_*` (the project file's `services.dicom-adapter.tls`):
our certificate and key (served to senders, and presented to destinations that ask for a
client certificate), the CA bundle that verifies client certificates and destinations, and
whether a sender must present a certificate. TLS 1.2 is the minimum (BCP 195).
"""

from __future__ import annotations

import ssl

from claractl.platform.config import DicomSettings


class TlsConfigError(ValueError):
    """The TLS settings cannot be used; the message names the file and the setting."""


def _load_chain(ctx: ssl.SSLContext, settings: DicomSettings) -> None:
    try:
        ctx.load_cert_chain(settings.tls_certificate, settings.tls_private_key,
                            password=settings.tls_private_key_password or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"dicom-adapter tls: cannot use certificate {settings.tls_certificate} with key "
                             f"{settings.tls_private_key}: {getattr(exc, 'strerror', None) or exc}") from None


def _load_ca(ctx: ssl.SSLContext, settings: DicomSettings) -> None:
    try:
        ctx.load_verify_locations(cafile=settings.tls_ca_certificates)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"dicom-adapter tls: cannot read CA certificates {settings.tls_ca_certificates}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None


def server_context(settings: DicomSettings) -> ssl.SSLContext:
    """For the TLS listener: our certificate; client certificates verified against the CA bundle,
    required when `tls_verify_clients`."""
    if not settings.tls_certificate or not settings.tls_private_key:
        raise TlsConfigError("dicom-adapter tls: a TLS port needs certificate and private-key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, settings)
    if settings.tls_verify_clients and not settings.tls_ca_certificates:
        raise TlsConfigError("dicom-adapter tls: verify-clients needs ca-certificates to verify them with")
    if settings.tls_ca_certificates:
        _load_ca(ctx, settings)
        ctx.verify_mode = ssl.CERT_REQUIRED if settings.tls_verify_clients else ssl.CERT_OPTIONAL
    return ctx


def client_context(settings: DicomSettings) -> ssl.SSLContext:
    """For exports to TLS destinations: the destination's certificate verified (CA bundle, else
    the system's) including its host name or address; our certificate offered when we have one."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca_certificates or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_certificate and settings.tls_private_key:
        _load_chain(ctx, settings)
    return ctx


def peer_subject(sock: ssl.SSLSocket) -> str:
    """The verified client certificate's subject as "CN=…, O=…" ("" when none was presented)."""
    cert = sock.getpeercert() or {}
    parts = [f"{key}={value}" for rdn in cert.get("subject", ()) for key, value in rdn]
    return ", ".join(parts).replace("commonName=", "CN=").replace("organizationName=", "O=")
