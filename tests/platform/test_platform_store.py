"""Store: versioned migrations (older database upgraded, newer refused) on SQLite and PostgreSQL;
bearer-token rule of the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from claractl.platform.api import ApiContext, create_app
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.store import SCHEMA_VERSION, SchemaTooNewError, Store
from claractl.platform.store.models import Base, Job, Payload, Pipeline


def _url(database: str, tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'clara.db'}" if database == "sqlite" else database


def test_version_1_database_is_upgraded_keeping_its_rows(database, tmp_path):
    url = _url(database, tmp_path)
    old = Store(url)
    # A database as the first release wrote it: no schema_version table, v1 columns only.
    v1_tables = [t for name, t in Base.metadata.tables.items() if name != "schema_version"]
    Base.metadata.create_all(old.engine, tables=v1_tables)
    with old.engine.begin() as conn:
        conn.execute(text('ALTER TABLE jobs DROP COLUMN cancel_requested'))
        conn.execute(text('ALTER TABLE operator_runs DROP COLUMN message'))
        conn.execute(text("INSERT INTO pipelines (id, name, name_key, definition_text, definition, export, created_at, updated_at) "
                          "VALUES ('p1', 'seg', 'seg', 'x', '{}', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO payloads (id, created_at, deleted) VALUES ('pl1', CURRENT_TIMESTAMP, false)"))
        conn.execute(text("INSERT INTO jobs (id, name, pipeline_id, pipeline_name, definition, payload_id, priority, state, "
                          "status, started, variables, metadata, timeout, attempts, created_at) VALUES ('j1', 'job', 'p1', "
                          "'seg', '{}', 'pl1', 1, 'PENDING', 'HEALTHY', true, '{}', '{}', 600, 0, CURRENT_TIMESTAMP)"))
    old.dispose()

    store = Store(url)
    assert store.create_all() == 1
    columns = {c["name"] for c in inspect(store.engine).get_columns("jobs")}
    assert "cancel_requested" in columns
    with store.session() as s:
        job = s.get(Job, "j1")
        assert (job.name, job.cancel_requested, s.get(Pipeline, "p1").name) == ("job", False, "seg")
        assert s.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    assert store.create_all() == SCHEMA_VERSION       # idempotent
    store.dispose()


def test_newer_database_is_refused_with_exact_message(database, tmp_path):
    url = _url(database, tmp_path)
    store = Store(url)
    store.create_all()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 5})
    store.dispose()
    with pytest.raises(SchemaTooNewError) as err:
        Store(url).create_all()
    assert str(err.value) == (f"database schema version {SCHEMA_VERSION + 5} is newer than this claractl "
                              f"understands (version {SCHEMA_VERSION}); upgrade claractl to open it")


def test_fresh_database_is_stamped_and_keeps_committed_rows(database, tmp_path):
    url = _url(database, tmp_path)
    store = Store(url)
    assert store.create_all() == 0
    with store.session() as s:
        s.add(Payload(id="x"))
    store.dispose()
    again = Store(url)
    again.create_all()
    with again.session() as s:
        assert s.get(Payload, "x") is not None
    again.dispose()


def _app(tmp_path, host: str, token: str | None):
    config = PlatformConfig(state_dir=str(tmp_path))
    config.api.host, config.api.token = host, token
    store = Store(config.database_url)
    store.create_all()
    return TestClient(create_app(ApiContext(config, store, InferenceHook(config)))), store


def test_writes_need_the_bearer_token_when_not_on_loopback(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("CLARA_API_TOKEN", raising=False)
    client, store = _app(tmp_path, "0.0.0.0", "s3cret-token")
    assert client.get("/api/v1/pipelines").status_code == 200
    r = client.post("/api/v1/payloads")
    assert r.status_code == 401 and r.json() == {"detail": "a valid bearer token is required for this request"}
    assert client.post("/api/v1/payloads", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/v1/payloads", headers={"Authorization": "Bearer s3cret-token"}).status_code == 201
    assert client.get("/api/v1/config").json()["api"]["token"] == "(sensitive)"
    assert "s3cret-token" not in caplog.text
    store.dispose()


def test_loopback_api_needs_no_token(tmp_path, monkeypatch):
    monkeypatch.delenv("CLARA_API_TOKEN", raising=False)
    client, store = _app(tmp_path, "127.0.0.1", "s3cret-token")
    assert client.post("/api/v1/payloads").status_code == 201
    store.dispose()
