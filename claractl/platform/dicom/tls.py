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


ADAPTER = "dicom-adapter tls"      # how errors name the project-file settings they come from


def _load_chain(ctx: ssl.SSLContext, certificate: str, key: str, password: str | None, where: str) -> None:
    try:
        ctx.load_cert_chain(certificate, key, password=password or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{where}: cannot use certificate {certificate} with key "
                             f"{key}: {getattr(exc, 'strerror', None) or exc}") from None


def _ca_error(where: str, ca_certificates: str, exc: Exception) -> TlsConfigError:
    return TlsConfigError(f"{where}: cannot read CA certificates {ca_certificates}: "
                          f"{getattr(exc, 'strerror', None) or exc}")


def server_context(settings: DicomSettings) -> ssl.SSLContext:
    """For the TLS listener: our certificate; client certificates verified against the CA bundle,
    required when `tls_verify_clients`."""
    if not settings.tls_certificate or not settings.tls_private_key:
        raise TlsConfigError("dicom-adapter tls: a TLS port needs certificate and private-key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, settings.tls_certificate, settings.tls_private_key, settings.tls_private_key_password, ADAPTER)
    if settings.tls_verify_clients and not settings.tls_ca_certificates:
        raise TlsConfigError("dicom-adapter tls: verify-clients needs ca-certificates to verify them with")
    if settings.tls_ca_certificates:
        try:
            ctx.load_verify_locations(cafile=settings.tls_ca_certificates)
        except (OSError, ssl.SSLError) as exc:
            raise _ca_error(ADAPTER, settings.tls_ca_certificates, exc) from None
        ctx.verify_mode = ssl.CERT_REQUIRED if settings.tls_verify_clients else ssl.CERT_OPTIONAL
    return ctx


def client_context(settings: DicomSettings) -> ssl.SSLContext:
    """For exports to TLS destinations: the destination's certificate verified (CA bundle, else
    the system's) including its host name or address; our certificate offered when we have one."""
    return peer_context(settings.tls_ca_certificates, settings.tls_certificate, settings.tls_private_key,
                        settings.tls_private_key_password, where=ADAPTER)


def peer_context(ca_certificates: str = "", certificate: str = "", private_key: str = "",
                 password: str | None = None, where: str = "TLS") -> ssl.SSLContext:
    """A client context: the peer verified against `ca_certificates` (else the system's CAs), our
    certificate offered when given (also `claractl dicom echo|send --tls`). Errors start with `where`."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_certificates or None)
    except (OSError, ssl.SSLError) as exc:
        raise _ca_error(where, ca_certificates, exc) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate and private_key:
        _load_chain(ctx, certificate, private_key, password, where)
    return ctx


def peer_subject(sock: ssl.SSLSocket) -> str:
    """The verified client certificate's subject as "CN=…, O=…" ("" when none was presented)."""
    cert = sock.getpeercert() or {}
    parts = [f"{key}={value}" for rdn in cert.get("subject", ()) for key, value in rdn]
    return ", ".join(parts).replace("commonName=", "CN=").replace("organizationName=", "O=")
