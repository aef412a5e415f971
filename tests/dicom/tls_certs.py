"""Certificates for the DICOM TLS tests, made with the `openssl` command: a CA, a server
certificate for 127.0.0.1/localhost and client certificates, plus an unrelated CA's."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    key: Path
    cert: Path


@dataclass(frozen=True)
class Pki:
    ca: Path                 # the CA certificate everyone trusts
    server: KeyPair          # CN=claractl-adapter, SAN 127.0.0.1 and localhost
    client: KeyPair          # CN=MODALITY-CT1, signed by the CA
    pacs: KeyPair            # CN=pacs, SAN 127.0.0.1 (a TLS destination)
    stranger: KeyPair        # self-signed by another CA: not to be trusted
    stranger_ca: Path


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {proc.stderr}")


def _ca(d: Path, name: str) -> KeyPair:
    pair = KeyPair(d / f"{name}.key", d / f"{name}.pem")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(pair.key), "-out", str(pair.cert),
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pair


def _issue(d: Path, ca: KeyPair, name: str, san: str | None, usage: str) -> KeyPair:
    pair = KeyPair(d / f"{name}.key", d / f"{name}.pem")
    csr = d / f"{name}.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}/O=claractl tests",
             "-keyout", str(pair.key), "-out", str(csr))
    ext = d / f"{name}.ext"
    ext.write_text(f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
             "-days", "2", "-out", str(pair.cert), "-extfile", str(ext))
    return pair


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "test-ca")
    other = _ca(d, "other-ca")
    return Pki(
        ca=ca.cert,
        server=_issue(d, ca, "claractl-adapter", "IP:127.0.0.1,DNS:localhost", "serverAuth,clientAuth"),
        client=_issue(d, ca, "MODALITY-CT1", None, "clientAuth"),
        pacs=_issue(d, ca, "pacs", "IP:127.0.0.1,DNS:localhost", "serverAuth,clientAuth"),
        stranger=_issue(d, other, "stranger", "IP:127.0.0.1", "serverAuth,clientAuth"),
        stranger_ca=other.cert,
    )
