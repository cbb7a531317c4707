"""`/api/v1/search` and the Search page, over real lake files written with LakeWriter."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from onca.deploy.stacks import home_context
from onca.lake.writer import LakeWriter
from onca.store.models import AuditLog
from tests.lake.conftest import SCHEMA, T0, make_row

from .conftest import db

IP = "198.51.100.23"
LONG_SQL = "SELECT count(*) FROM range(100000) a, range(100000) b WHERE (a.range * b.range) % 7 = 3"


@pytest.fixture
def lake(web_home: Path) -> Path:
    """The deployment's lake with 3 rows of test_events (one mentions IP) and 1 of other_events."""
    ctx = home_context(web_home)
    assert ctx is not None
    writer = LakeWriter(ctx.lake_dir)
    writer.write("Test.Events", [make_row(1, T0, ip=IP), make_row(2, T0 + timedelta(minutes=5)),
                                 make_row(3, T0 + timedelta(hours=2), user="<b>mallory</b>")], SCHEMA)
    writer.write("Other.Events", [make_row(4, T0, ip=IP, log_type="Other.Events")], SCHEMA)
    return ctx.lake_dir


@pytest.fixture
def analyst(client: Callable[..., TestClient], lake: Path) -> TestClient:
    return client("Analyst")


def searches(app: FastAPI) -> list[AuditLog]:
    with db(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == "search.run").order_by(AuditLog.id)))


def test_select_over_lake_files(analyst: TestClient, app: FastAPI) -> None:
    answer = analyst.post("/api/v1/search/sql", json={
        "sql": "SELECT p_row_id, bytes, userIdentity, p_event_time FROM test_events ORDER BY bytes"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == ["p_row_id", "bytes", "userIdentity", "p_event_time"] and not body["truncated"]
    assert [row[:2] for row in body["rows"]] == [["Test.Events-000001", 1], ["Test.Events-000002", 2],
                                                 ["Test.Events-000003", 3]]
    assert body["rows"][0][2] == {"type": "IAMUser", "userName": "alice"}
    assert body["rows"][0][3].startswith("2025-03-01T10:15:00")
    limited = analyst.post("/api/v1/search/sql", json={"sql": "SELECT * FROM test_events", "limit": 2}).json()
    assert len(limited["rows"]) == 2 and limited["truncated"]
    audited = searches(app)
    assert [(r.actor, r.details["rows"], r.details["truncated"]) for r in audited] == \
        [("analyst@example.com", 3, False), ("analyst@example.com", 2, True)]
    assert audited[0].details["sql"].startswith("SELECT p_row_id")


@pytest.mark.parametrize(("sql", "reason"), [
    ("DELETE FROM test_events", "DELETE statements are refused"),
    ("COPY test_events TO 'out.csv'", "COPY statements are refused"),
    ("ATTACH 'other.db' AS other", "ATTACH statements are refused"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("CREATE TABLE t AS SELECT 1", "CREATE statements are refused"),
    ("SELEC 1", "invalid SQL"),
])
def test_anything_but_a_read_is_refused(analyst: TestClient, app: FastAPI, sql: str, reason: str) -> None:
    answer = analyst.post("/api/v1/search/sql", json={"sql": sql})
    assert answer.status_code == 400 and reason in answer.json()["detail"], answer.text
    assert [(r.details["sql"], r.details["outcome"]) for r in searches(app)] == [(sql, "failure")]


def test_a_long_query_is_cancelled(analyst: TestClient) -> None:
    answer = analyst.post("/api/v1/search/sql", json={"sql": LONG_SQL, "timeout_s": 0.5})
    assert answer.status_code == 400 and answer.json()["detail"] == "query timed out after 0.5 s"
    assert analyst.post("/api/v1/search/sql", json={"sql": "SELECT 1", "timeout_s": 3600}).status_code == 422
    assert analyst.post("/api/v1/search/sql", json={"sql": "SELECT 1", "limit": 10**6}).status_code == 422


def test_csv_download(analyst: TestClient) -> None:
    answer = analyst.post("/api/v1/search/sql?format=csv",
                          json={"sql": "SELECT p_row_id, userIdentity.userName AS who FROM test_events ORDER BY 1"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="onca-search.csv"'
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["p_row_id", "who"], ["Test.Events-000001", "alice"], ["Test.Events-000002", "alice"],
        ["Test.Events-000003", "<b>mallory</b>"]]
    assert analyst.post("/api/v1/search/sql?format=xml", json={"sql": "SELECT 1"}).status_code == 422


def test_indicator_search_finds_an_ip(analyst: TestClient, app: FastAPI) -> None:
    answer = analyst.get("/api/v1/search/indicators", params={"ip": IP})
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    assert sorted((h["table"], h["p_row_id"]) for h in hits) == [("other_events", "Other.Events-000004"),
                                                                 ("test_events", "Test.Events-000001")]
    assert "eventName=Call1" in next(h["summary"] for h in hits if h["table"] == "test_events")
    since = analyst.get("/api/v1/search/indicators", params={"ip": IP, "since": "2025-03-01T11:00:00Z"}).json()
    assert since["hits"] == []
    assert analyst.get("/api/v1/search/indicators", params={"user": "<b>mallory</b>"}).json()["hits"][0][
        "p_row_id"] == "Test.Events-000003"
    assert analyst.get("/api/v1/search/indicators").status_code == 400
    assert analyst.get("/api/v1/search/indicators", params={"ip": IP, "user": "bob"}).status_code == 400
    bad_since = analyst.get("/api/v1/search/indicators", params={"ip": IP, "since": "yesterday"})
    assert bad_since.status_code == 400 and "since" in bad_since.json()["detail"]
    assert [(r.details["kind"], r.details["value"], r.details["hits"]) for r in searches(app)][:2] == \
        [("ip", IP, 2), ("ip", IP, 0)]


def test_tables_with_columns(analyst: TestClient) -> None:
    tables = {t["name"]: t for t in analyst.get("/api/v1/search/tables").json()["tables"]}
    assert tables["test_events"]["rows"] == 3 and tables["other_events"]["rows"] == 1
    columns = {c["name"]: c["type"] for c in tables["test_events"]["columns"]}
    assert columns["eventName"] == "VARCHAR" and columns["bytes"] == "BIGINT" and "p_any_ip_addresses" in columns


# --- the Search page ---------------------------------------------------------------------------------------


def test_search_page_runs_sql_and_shows_tables(analyst: TestClient, app: FastAPI) -> None:
    page = analyst.get("/search")
    assert page.status_code == 200
    assert "test_events" in page.text and "p_any_ip_addresses" in page.text and 'name="csrf_token"' in page.text
    result = analyst.post("/search", data={"sql": "SELECT p_row_id, userIdentity.userName AS who FROM test_events "
                                                  "ORDER BY 1", "limit": "10", "format": "table"})
    assert result.status_code == 200
    assert "Test.Events-000003" in result.text and "3 rows" in result.text
    assert "&lt;b&gt;mallory&lt;/b&gt;" in result.text and "<b>mallory</b>" not in result.text
    download = analyst.post("/search", data={"sql": "SELECT p_row_id FROM test_events ORDER BY 1", "format": "csv"})
    assert download.headers["content-type"].startswith("text/csv")
    assert download.text.splitlines() == ["p_row_id", "Test.Events-000001", "Test.Events-000002",
                                          "Test.Events-000003"]
    refused = analyst.post("/search", data={"sql": "DROP TABLE test_events", "format": "table"})
    assert refused.status_code == 400 and "DROP statements are refused" in refused.text
    assert "DROP TABLE test_events</textarea>" in refused.text  # kept in the editor for fixing
    assert len(searches(app)) == 3


def test_search_page_finds_an_indicator(analyst: TestClient) -> None:
    page = analyst.get("/search", params={"kind": "ip", "value": IP, "since": ""})
    assert page.status_code == 200 and "2 events mention" in page.text and "other_events" in page.text
    bad = analyst.get("/search", params={"kind": "ip", "value": IP, "since": "soon"})
    assert bad.status_code == 422 and "since" in bad.text
    assert analyst.get("/search", params={"kind": "name", "value": "x"}).status_code == 422


def test_without_csrf_the_page_refuses_to_run(analyst: TestClient, app: FastAPI) -> None:
    forged = TestClient(app, cookies=analyst.cookies)
    assert forged.post("/search", data={"sql": "SELECT 1"}, follow_redirects=False).status_code == 403
    assert searches(app) == []


@pytest.mark.parametrize("role", ["Support", "Operations"])
def test_operator_roles_never_see_search_results(role: str, client: Callable[..., TestClient],
                                                 token_client: Callable[..., TestClient], app: FastAPI,
                                                 lake: Path) -> None:
    session, token = client(role), token_client(role, email=f"{role.lower()}-bot@example.com")
    for caller in (session, token):
        for method, url, kwargs in [("POST", "/api/v1/search/sql", {"json": {"sql": "SELECT * FROM test_events"}}),
                                    ("POST", "/api/v1/search/sql?format=csv",
                                     {"json": {"sql": "SELECT * FROM test_events"}}),
                                    ("GET", f"/api/v1/search/indicators?ip={IP}", {}),
                                    ("GET", "/api/v1/search/tables", {})]:
            answer = caller.request(method, url, **kwargs)
            assert answer.status_code == 403 and "Test.Events-0000" not in answer.text, (role, url)
    for method, url, kwargs in [("GET", "/search", {}), ("GET", f"/search?kind=ip&value={IP}", {}),
                                ("POST", "/search", {"data": {"sql": "SELECT * FROM test_events"}})]:
        answer = session.request(method, url, **kwargs)
        assert answer.status_code == 403 and "Test.Events-0000" not in answer.text, (role, url)
    assert searches(app) == []
