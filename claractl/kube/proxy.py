"""Reach the platform API through the Kubernetes API server's service proxy (no port-forward):
`<api-server>/api/v1/namespaces/<ns>/services/<service>:<port>/proxy/…`, authenticated with
the same credentials and TLS settings as the kubeconfig context.

The cluster credential travels in `Authorization`, so the platform's own API token goes in
`X-Clara-Token` (the platform API must accept it there for writes through the proxy; see
docs/kubernetes.md).
"""

from __future__ import annotations

import httpx

from claractl.kube.client import Rest
PLATFORM_SERVICE = "clara-platform"        # release "clara", chart "platform" (targets/kubernetes/values.py)


def platform_base_url(rest: Rest, namespace: str, port: int = 8765, service: str = PLATFORM_SERVICE) -> str:
    return f"{rest.host.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


def platform_client(rest: Rest, namespace: str, port: int = 8765, token: str | None = None,
                    service: str = PLATFORM_SERVICE, timeout: float = 30.0) -> httpx.Client:
    """An httpx client whose base URL is the platform API behind the service proxy."""
    cfg = rest.api.configuration
    headers = {}
    credential = cfg.get_api_key_with_prefix("authorization")      # "Bearer …", refreshed if exec/OIDC
    if credential:
        headers["Authorization"] = credential
    if token:
        headers["X-Clara-Token"] = token
    verify: bool | str = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file else None
    return httpx.Client(base_url=platform_base_url(rest, namespace, port, service), headers=headers,
                        verify=verify, cert=cert, timeout=timeout)
