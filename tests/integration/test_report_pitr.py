"""Supabase PITR through the Management API, served by a real local HTTP server standing in
for api.supabase.com, with the token read from Secrets Manager (moto)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws

from backstop import pitr
from backstop.report_model import FAIL, INFO, PASS, Settings

TOKEN = "sbp_0123456789abcdef0123456789abcdef01234567"
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
PROJECTS = {  # what the Management API answers per project ref
    "pitronproject00001": {"region": "eu-west-1", "walg_enabled": True, "pitr_enabled": True,
                           "backups": [], "physical_backup_data": {
                               "earliest_physical_backup_date_unix": int(NOW.timestamp()) - 7
                               * 86400, "latest_physical_backup_date_unix":
                               int(NOW.timestamp()) - 90}},
    "pitroffproject0001": {"region": "eu-west-1", "walg_enabled": True, "pitr_enabled": False,
                           "backups": [{"is_physical_backup": True, "status": "COMPLETED",
                                        "inserted_at": "2026-01-15T02:00:00Z"}]},
}


class ManagementApi(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        ref = self.path.removeprefix("/v1/projects/").removesuffix("/database/backups")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        body = PROJECTS.get(ref)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {"message": "not found"}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ManagementApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ManagementApi.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="backstop/supabase-token", SecretString=TOKEN)
        client.create_secret(Name="backstop/wrong-token", SecretString="sbp_wrong")
        yield client


def settings(**sources: dict[str, str]) -> Settings:
    return Settings.from_dict({"databases": [{"name": n} for n in [*sources, "other"]],
                               "report": {"pitr": sources}})


def test_supabase_pitr_on_passes_with_its_window(api: str, secrets: Any) -> None:
    given = settings(app={"supabase_project": "pitronproject00001",
                          "token_secret": "backstop/supabase-token"})
    found = pitr.statuses(given, rds=None, secrets=secrets, now=NOW, api=api)
    item = pitr.pitr_item(found, given)
    assert item.status == PASS
    assert item.evidence[0] == ("app: Supabase project pitronproject00001: PITR on, newest "
                                "restorable point 1.5 min ago")
    assert item.evidence[1].startswith("other: PITR is not watched")
    assert ManagementApi.seen == [("/v1/projects/pitronproject00001/database/backups",
                                   f"Bearer {TOKEN}")]


def test_supabase_pitr_off_fails(api: str, secrets: Any) -> None:
    given = settings(app={"supabase_project": "pitroffproject0001",
                          "token_secret": "backstop/supabase-token"})
    item = pitr.pitr_item(pitr.statuses(given, rds=None, secrets=secrets, now=NOW, api=api),
                          given)
    assert item.status == FAIL
    assert "  PITR is OFF for Supabase project pitroffproject0001" in item.evidence


def test_a_refused_token_fails_without_showing_the_token(api: str, secrets: Any) -> None:
    given = settings(app={"supabase_project": "pitronproject00001",
                          "token_secret": "backstop/wrong-token"},
                     billing={"supabase_project": "pitronproject00001",
                              "token_secret": "backstop/no-such-secret"})
    item = pitr.pitr_item(pitr.statuses(given, rds=None, secrets=secrets, now=NOW, api=api),
                          given)
    text = json.dumps(item.to_dict())
    assert item.status == FAIL
    assert "answered HTTP 401 for project pitronproject00001" in text
    assert "cannot read the Management API token secret backstop/no-such-secret" in text
    assert "sbp_" not in text


def test_no_source_says_pitr_is_not_watched() -> None:
    given = Settings.from_dict({"databases": [{"name": "app"}]})
    item = pitr.pitr_item(pitr.statuses(given, rds=None, secrets=None, now=NOW), given)
    assert item.status == INFO and "not watched" in item.summary
