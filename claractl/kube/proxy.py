"""Reach an HTTP service in the cluster through the Kubernetes API server's service proxy (no
port-forward): `<api-server>/api/v1/namespaces/<ns>/services/<service>:<port>/proxy/…`,
authenticated exactly as the kubeconfig context is — client certificate, bearer token (also one
an exec/OIDC plugin refreshes), CA bundle or insecure-skip-tls-verify.

The cluster credential travels in `Authorization` (the API server strips it before forwarding),
so the platform's own API token goes in `X-Clara-Token`.

Answers the API server itself gives — RBAC refusal, unknown service, no ready endpoints — are
`kind: Status` documents rather than the proxied service's; `proxy_status()` reads them so a
caller can say what went wrong instead of printing the service's (absent) error field.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx

from claractl.kube.client import Rest

PLATFORM_SERVICE = "clara-platform"        # release "clara", chart "platform" (targets/kubernetes/values.py)


def proxy_base_url(rest: Rest, namespace: str, service: str, port: int | str) -> str:
    return f"{rest.host.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


def platform_base_url(rest: Rest, namespace: str, port: int = 8765, service: str = PLATFORM_SERVICE) -> str:
    return proxy_base_url(rest, namespace, service, port)


def tls_context(rest: Rest) -> ssl.SSLContext | bool:
    """The kubeconfig's TLS settings as one SSLContext: its CA (or the system's), and its client
    certificate when it has one. (httpx ignores `cert=` when `verify` is a CA path, so the
    certificate must be loaded into the context itself.)"""
    cfg = rest.api.configuration
    if not cfg.verify_ssl:
        if not cfg.cert_file:
            return False
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return context


def proxy_client(rest: Rest, namespace: str, service: str, port: int | str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0, **kw: Any) -> httpx.Client:
    """An httpx client whose base URL is `service:port` in `namespace`, behind the service proxy."""
    cfg = rest.api.configuration
    all_headers = dict(headers or {})
    credential = cfg.get_api_key_with_prefix("authorization")      # "Bearer …", refreshed if exec/OIDC
    if credential:
        all_headers["Authorization"] = credential
    return httpx.Client(base_url=proxy_base_url(rest, namespace, service, port), headers=all_headers,
                        verify=tls_context(rest), timeout=timeout, **kw)


def platform_client(rest: Rest, namespace: str, port: int = 8765, token: str | None = None,
                    service: str = PLATFORM_SERVICE, timeout: float = 30.0, **kw: Any) -> httpx.Client:
    """An httpx client for the platform API behind the service proxy."""
    headers = {"X-Clara-Token": token} if token else {}
    return proxy_client(rest, namespace, service, port, headers=headers, timeout=timeout, **kw)


def proxy_status(response: httpx.Response) -> str | None:
    """For an error the API server answered itself (a `kind: Status` body): "<code> <reason>: <message>".
    None for answers that came from the proxied service."""
    if response.status_code < 400 or not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = json.loads(response.read() or b"{}")
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return None
    reason = body.get("reason") or response.reason_phrase
    return f"{response.status_code} {reason}: {body.get('message') or 'no message'}"
