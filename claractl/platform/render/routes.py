"""HTTP routes of the render service: the single-page UI under /ui/ and its JSON under
/api/v1/render/. Handlers that touch the store or the disk are plain `def` (FastAPI runs them
in its thread pool); only the SSE stream is async."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, StreamingResponse

from claractl.platform.audit.query import list_events
from claractl.platform.render import auth, views

if TYPE_CHECKING:
    from claractl.platform.render.service import RenderService

DIST = Path(__file__).parent / "static" / "dist"
LOG_TAIL_BYTES = 512 * 1024
# The UI loads only its own code and data; NiiVue needs inline styles, blob: and data: images
# (its fonts) and WebAssembly codecs. No Referer: a `?token=` URL never leaks to another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# SPA routes the front end knows; the server answers 404 for the rest (and for unknown jobs).
UI_ROUTES = [re.compile(p) for p in (r"", r"jobs", r"pipelines", r"platform", r"audit", r"jobs/([^/]+)(/viewer)?")]


def build_router(service: "RenderService") -> APIRouter:
    config = service.config
    router = APIRouter()

    def require_access(request: Request) -> None:
        access = auth.check(config, request)
        if access not in (auth.Access.OPEN, auth.Access.GRANTED):
            raise HTTPException(401, auth.denial_message(access), headers={"WWW-Authenticate": "Bearer"})

    data = APIRouter(prefix="/api/v1/render", dependencies=[Depends(require_access)], tags=["render"])

    # -- UI -------------------------------------------------------------------------------------
    @router.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui", include_in_schema=False)
    def ui_bare() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui/assets/{name:path}", include_in_schema=False)
    def ui_asset(name: str) -> FileResponse:
        # Built JS/CSS are code, not patient data: served without a token so the login page is styled.
        path = (DIST / "assets" / name).resolve()
        if not path.is_relative_to((DIST / "assets").resolve()) or not path.is_file():
            raise HTTPException(404, f"no asset {name}")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @router.get("/ui/{page:path}", include_in_schema=False)
    def ui_page(page: str, request: Request, token: str | None = Query(None)):
        if token is not None:
            access = auth.check(config, request, token=token)
            if access is auth.Access.GRANTED:
                rest = {k: v for k, v in request.query_params.items() if k != "token"}
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(
                    auth.COOKIE, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/",
                )
                return response
        else:
            access = auth.check(config, request)
        if access not in (auth.Access.OPEN, auth.Access.GRANTED):
            return HTMLResponse(_login_page(auth.denial_message(access), bool(token)), status_code=401,
                                headers=SECURITY_HEADERS)
        index = DIST / "index.html"
        if not index.is_file():
            return HTMLResponse(
                _message_page("Dashboard not built", "The UI assets are missing: run `npm ci && npm run build` "
                              "in the claractl checkout (scripts/setup.sh does)."),
                status_code=503,
            )
        return HTMLResponse(index.read_text(), status_code=_page_status(service, page.strip("/")),
                            headers={"Cache-Control": "no-store", **SECURITY_HEADERS})

    # -- data -----------------------------------------------------------------------------------
    @data.get("/overview")
    def overview() -> dict:
        with service.store.session() as s:
            return views.overview(s)

    @data.get("/audit")
    def audit(
        kind: str | None = Query(None, max_length=16), actor: str | None = Query(None, max_length=255),
        study_uid: str | None = Query(None, max_length=64), job_id: str | None = Query(None, max_length=36),
        failures: bool = False, before_id: int | None = Query(None, ge=1), limit: int = Query(200, ge=1, le=1000),
    ) -> dict:
        with service.store.session() as s:
            return {"events": list_events(s, kind=kind, actor=actor, study_uid=study_uid, job_id=job_id,
                                          failures=failures, before_id=before_id, limit=limit)}

    @data.get("/jobs")
    def jobs(
        state: str | None = None, status: str | None = None, pipeline: str | None = None,
        source: str | None = None, q: str | None = None, limit: int = Query(200, ge=1, le=2000),
    ) -> dict:
        with service.store.session() as s:
            rows = views.list_jobs(s, state=state, status=status, pipeline=pipeline, source=source,
                                   search=q, limit=limit)
        return {"jobs": rows}

    @data.get("/jobs/{job_id}")
    def job(job_id: str) -> dict:
        with service.store.session() as s:
            found = views.get_job(s, job_id)
            if found is None:
                raise HTTPException(404, f"no job {job_id}")
            return views.job_detail(s, found, config.payloads_dir, config.logs_dir)

    @data.get("/jobs/{job_id}/logs/{operator}", response_class=PlainTextResponse)
    def job_log(job_id: str, operator: str) -> PlainTextResponse:
        with service.store.session() as s:
            found = views.get_job(s, job_id)
            if found is None:
                raise HTTPException(404, f"no job {job_id}")
            if operator not in {op.name for op in found.operators}:
                raise HTTPException(404, f"job {job_id} has no operator {operator}")
        path = config.logs_dir / "jobs" / job_id / f"{operator}.log"
        if not path.is_file():
            raise HTTPException(404, f"operator {operator} has written no log (yet)")
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - LOG_TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
        if size > LOG_TAIL_BYTES:
            text = f"[… first {size - LOG_TAIL_BYTES} bytes left out …]\n" + text
        return PlainTextResponse(text, headers={"Cache-Control": "no-store"})

    @data.get("/jobs/{job_id}/files/{rel:path}")
    def payload_file(job_id: str, rel: str) -> FileResponse:
        root = _payload_root(service, job_id)
        path = (root / rel).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no file {rel}")
        return FileResponse(path, filename=path.name)

    @data.get("/jobs/{job_id}/viewer")
    def viewer(job_id: str) -> dict:
        payload_id = _payload_id(service, job_id)
        try:
            series = service.finder.find(job_id, payload_id)
        except Exception as exc:   # a damaged input must give a message, not a blank viewer
            return {"series": [], "message": f"the job's images could not be read: {exc}"}
        base = f"/api/v1/render/jobs/{job_id}/volumes"
        out = []
        for item in series:
            out.append({
                "key": item.key,
                "origin": item.origin,
                "volume_url": f"{base}/{item.key}/volume{_suffix(item.volume)}",
                "label_url": f"{base}/{item.key}/label{_suffix(item.label)}" if item.label else None,
                "segments": item.segments,
            })
        message = None
        if not out and not (config.payloads_dir / payload_id).is_dir():
            message = "This job's payload has been removed (retention), so there is no image to show."
        elif not out:
            message = ("This job has no image volume to show: no NIfTI in its payload "
                       "(dicom-reader output) and no DICOM image series in its input.")
        return {"series": out, "message": message}

    @data.get("/jobs/{job_id}/volumes/{key}/{name}")
    def volume_file(job_id: str, key: str, name: str,
                    max_dim: int | None = Query(None, ge=16, le=4096)) -> FileResponse:
        kind = name.split(".", 1)[0]
        if kind not in ("volume", "label"):
            raise HTTPException(404, f"no {name}")
        series = {s.key: s for s in service.finder.find(job_id, _payload_id(service, job_id))}
        item = series.get(key)
        path = getattr(item, kind, None) if item else None
        if path is None:
            raise HTTPException(404, f"job {job_id} has no {kind} {key}")
        if max_dim:
            path = service.finder.reduced(job_id, item, kind, max_dim)
        return FileResponse(path, media_type="application/octet-stream")

    @data.get("/events")
    async def events(request: Request) -> StreamingResponse:
        return StreamingResponse(
            service.feed.stream(request.is_disconnected),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @data.get("/status")
    def status() -> dict:
        return service.status()

    router.include_router(data)
    return router


def _suffix(path: Path | None) -> str:
    return ".nii.gz" if path and path.name.endswith(".gz") else ".nii"


def _payload_id(service: "RenderService", job_id: str) -> str:
    with service.store.session() as s:
        found = views.get_job(s, job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id}")
        return found.payload_id


def _payload_root(service: "RenderService", job_id: str) -> Path:
    return service.config.payloads_dir / _payload_id(service, job_id)


def _page_status(service: "RenderService", page: str) -> int:
    for pattern in UI_ROUTES:
        match = pattern.fullmatch(page)
        if match:
            if match.groups() and match.group(1):
                with service.store.session() as s:
                    return 200 if views.get_job(s, match.group(1)) is not None else 404
            return 200
    return 404


def _message_page(title: str, text: str) -> str:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)} · claractl</title>"
            f"</head><body style='font-family:sans-serif;margin:3em'><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p></body></html>")


def _login_page(reason: str, wrong: bool) -> str:
    note = "<p style='color:#b00'>That token was not accepted.</p>" if wrong else ""
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Sign in · claractl</title></head>"
        "<body style='font-family:sans-serif;margin:3em;max-width:40em'><h1>claractl dashboard</h1>"
        f"<p>{html.escape(reason)}.</p>{note}"
        "<form method=get><label>API token <input type=password name=token autofocus></label> "
        "<button>Open</button></form></body></html>"
    )
