"""One-line errors for everything that can go wrong talking to a cluster."""

from __future__ import annotations

import json


class KubeError(Exception):
    """A cluster call failed; str() is one line that says what and, where it can, what to do."""


class ApplyConflict(KubeError):
    """Server-side apply found fields owned by other managers with different values."""

    def __init__(self, address: str, conflicts: list[tuple[str, str]]) -> None:
        self.address = address
        self.conflicts = conflicts            # (manager, field path)
        fields = ", ".join(f"{f} (owned by {m!r})" for m, f in conflicts)
        super().__init__(f"{address}: conflict: {fields}; another field manager changed these fields — "
                         "rerun with --force-conflicts to take them over")


class LockHeld(KubeError):
    def __init__(self, name: str, holder: str, age_seconds: float) -> None:
        self.holder, self.age_seconds = holder, age_seconds
        super().__init__(f"lock {name} is held by {holder!r} (acquired {age_seconds:.0f}s ago); "
                         f"wait for that run to finish, or if it is gone: claractl force-unlock {holder}")


class WaitTimeout(KubeError):
    pass


def status_of(exc) -> dict:
    try:
        body = json.loads(exc.body or "{}")
        return body if isinstance(body, dict) else {}
    except (ValueError, TypeError):
        return {}


def translate(exc: BaseException, what: str, host: str = "") -> KubeError:
    """Map a kubernetes-client/urllib3 exception to a KubeError naming `what` was being done."""
    from kubernetes.client.exceptions import ApiException
    import urllib3.exceptions as u3

    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, (u3.HTTPError, OSError)) and not isinstance(exc, ApiException):
        reason = getattr(exc, "reason", None) or exc
        text = str(reason).split(": ", 1)[-1] if "Failed to establish" in str(reason) else type(reason).__name__
        return KubeError(f"cannot reach the Kubernetes API server{(' at ' + host) if host else ''} "
                         f"({text.strip()}); check the kubeconfig context and that the cluster is up")
    if isinstance(exc, ApiException):
        status = status_of(exc)
        message = status.get("message") or exc.reason or ""
        code = exc.status
        if code == 401:
            return KubeError(f"{what}: the API server rejected the credentials (401 Unauthorized); "
                             "check the user/token of the kubeconfig context")
        if code == 403 and "admission webhook" in message:
            return KubeError(f"{what}: denied by {message}")
        if code == 403:
            return KubeError(f"{what}: forbidden by RBAC: {message}")
        if code == 404 and (status.get("details") or {}).get("kind") == "namespaces":
            name = status["details"].get("name")
            return KubeError(f"{what}: namespace {name!r} does not exist; create it "
                             "(kubectl create namespace) or set target.kubernetes.namespace")
        if code == 422:
            return KubeError(f"{what}: rejected as invalid: {message}")
        return KubeError(f"{what}: {code} {status.get('reason') or exc.reason}: {message}".rstrip(": "))
    return KubeError(f"{what}: {exc}")
