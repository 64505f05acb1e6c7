"""Signing in to the pages, on SQLite and PostgreSQL: the cookie, what a session may do, and
the CSRF and session checks that refuse forged, missing and expired forms."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from execdb.auth.models import WebSession
from execdb.db import utcnow
from tests.functional.test_pages import text_of
from tests.helpers import events, job_in, report
from tests.live import LiveServer, StartServer


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, "the page has a form with its CSRF token"
    return found.group(1)


def browser(server: LiveServer) -> httpx.Client:
    """A client that keeps cookies, as a browser does."""
    return httpx.Client(base_url=server.url, timeout=30)


def sign_in(client: httpx.Client, server: LiveServer, token: str, target: str = "/") -> None:
    form = client.get("/signin", params={"next": target})
    assert form.status_code == 200
    answer = client.post(
        "/signin",
        data={"csrf": csrf_of(form), "token": server.tokens[token], "next": target},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == target


def crash(server: LiveServer, **body: Any) -> dict[str, Any]:
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        answer = report(client, job["uuid"], state="CRASHED", **body)
        assert answer.status_code == 200, answer.text
        crashed: dict[str, Any] = answer.json()
        return crashed


def test_signing_in_keeps_a_strict_http_only_cookie_and_signing_out_ends_it(
    server: LiveServer,
) -> None:
    with browser(server) as client:
        form = client.get("/signin")
        answer = client.post(
            "/signin",
            data={"csrf": csrf_of(form), "token": server.tokens["triage"], "next": "/jobs"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/jobs"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("execdb_session=")
        )
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert "secure" not in attributes  # the request came over http
        assert server.tokens["triage"] not in cookie
        page = client.get("/")
        assert "Signed in as test-triage" in text_of(page)
        out = client.post("/signout", data={"csrf": csrf_of(page)})
        assert out.status_code == 303
        assert "Signed in" not in text_of(client.get("/"))


def test_a_secure_cookie_behind_an_https_proxy(make_server: StartServer) -> None:
    server = make_server()
    with browser(server) as client:
        form = client.get("/signin")
        answer = client.post(
            "https://127.0.0.1/signin".replace("https://127.0.0.1", server.url),
            data={"csrf": csrf_of(form), "token": server.tokens["admin"]},
            headers={"X-Forwarded-Proto": "https"},
        )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "execdb_session=" in c)
    assert "secure" in cookie.lower()


def test_a_bad_token_or_a_forged_sign_in_is_refused(server: LiveServer) -> None:
    with browser(server) as client:
        form = client.get("/signin")
        csrf = csrf_of(form)
        bad = client.post("/signin", data={"csrf": csrf, "token": "execdb_nonsense"})
        assert bad.status_code == 401
        assert "That token is not valid" in text_of(bad)
        revoked = client.post("/signin", data={"csrf": csrf, "token": server.tokens["revoked"]})
        assert revoked.status_code == 401
        forged = client.post("/signin", data={"csrf": "x" * 40, "token": server.tokens["admin"]})
        assert forged.status_code == 403
        assert "CSRF token is missing or does not match" in text_of(forged)
    with browser(server) as fresh:  # no sign-in cookie at all
        missing = fresh.post("/signin", data={"csrf": csrf, "token": server.tokens["admin"]})
        assert missing.status_code == 403
        assert "execdb_session" not in missing.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_sends_the_browser_to_another_site(server: LiveServer, target: str) -> None:
    with browser(server) as client:
        form = client.get("/signin")
        answer = client.post(
            "/signin", data={"csrf": csrf_of(form), "token": server.tokens["admin"], "next": target}
        )
    assert answer.headers["location"] == "/"


def test_pages_work_after_signing_in_when_reads_need_a_token(make_server: StartServer) -> None:
    server: LiveServer = make_server(require_token_for_reads=True)
    with browser(server) as client:
        refused = client.get("/jobs")
        assert refused.status_code == 401
        assert "/signin?next=/jobs" in refused.text
        sign_in(client, server, "report", "/jobs")
        for path in ("/", "/jobs", "/stats", "/causes", "/triage", "/api/v1/jobs"):
            assert client.get(path).status_code == 200, path


def test_only_a_triage_session_sees_and_may_send_the_form(server: LiveServer) -> None:
    job = crash(server, details="segfault")
    path = f"/jobs/{job['uuid']}"
    with browser(server) as client:
        assert 'id="classify"' not in client.get(path).text
        sign_in(client, server, "report")
        page = client.get(path)
        assert 'id="classify"' not in page.text
        refused = client.post(
            f"{path}/classification", data={"csrf": csrf_of(page), "cause": "task.exception"}
        )
        assert refused.status_code == 403
        assert "lacks the scope 'triage'" in text_of(refused)


def test_classifying_from_the_job_page_says_what_it_will_do_first(server: LiveServer) -> None:
    job = crash(server, details="segfault")
    path = f"/jobs/{job['uuid']}"
    with browser(server) as client:
        sign_in(client, server, "triage")
        page = client.get(path)
        assert 'id="classify"' in page.text
        form = {"csrf": csrf_of(page), "blame": "", "cause": "koji.timeout", "note": "koji down"}
        confirm = client.post(f"{path}/classification", data=form)
        assert confirm.status_code == 200
        assert "This will schedule a retry at" in text_of(confirm)
        with server.client() as api:
            assert api.get(f"/api/v1{path}").json()["classified_by"] is None, "nothing yet"
        done = client.post(f"{path}/classification", data={**form, "confirm": "yes"})
        assert done.status_code == 303
        assert done.headers["location"] == f"{path}#crash-title"
        words = text_of(client.get(path))
    assert "a person, test-triage : “koji down”" in words
    with server.client() as api:
        stored = api.get(f"/api/v1{path}").json()
        history = events(api, job["uuid"])
    assert (stored["blame"], stored["cause"], stored["classified_by"]) == (
        "THIRD_PARTY",
        "koji.timeout",
        "person",
    )
    assert stored["retry_at"] is not None
    assert (history[-1]["actor"], history[-1]["outcome"]) == ("test-triage", "classified")


def test_forged_missing_and_expired_forms_are_refused_and_change_nothing(
    server: LiveServer,
) -> None:
    job = crash(server, details="segfault")
    path = f"/jobs/{job['uuid']}/classification"
    body = {"cause": "task.exception", "confirm": "yes"}
    with browser(server) as client:
        sign_in(client, server, "triage")
        csrf = csrf_of(client.get(f"/jobs/{job['uuid']}"))
        for sent, status in (({}, 403), ({"csrf": "forged"}, 403), ({"csrf": csrf[:-1]}, 403)):
            answer = client.post(path, data={**body, **sent})
            assert answer.status_code == status, sent
            assert "nothing was changed" in text_of(answer)
        with server.services.db.write() as conn:
            conn.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        expired = client.post(path, data={**body, "csrf": csrf})
        assert expired.status_code == 401
        assert "sign in first" in text_of(expired)
    with browser(server) as stranger:  # another browser, with the token from the page
        assert stranger.post(path, data={**body, "csrf": csrf}).status_code == 401
    with server.client() as api:
        assert api.get(f"/api/v1/jobs/{job['uuid']}").json()["classified_by"] is None
        assert events(api, job["uuid"])[-1]["outcome"] == "accepted"


def test_revoking_the_token_or_the_sessions_ends_them(make_server: StartServer) -> None:
    server = make_server(require_token_for_reads=True)
    services = server.services
    with browser(server) as client, browser(server) as other:
        sign_in(client, server, "report")
        sign_in(other, server, "admin")
        assert client.get("/jobs").status_code == 200
        assert services.sessions.revoke("test-report", utcnow()) == 1
        assert client.get("/jobs").status_code == 401
        assert other.get("/jobs").status_code == 200
        services.tokens.revoke("test-admin", utcnow())
        assert other.get("/jobs").status_code == 401


def test_a_bad_form_or_window_is_a_page_naming_what_is_wrong(server: LiveServer) -> None:
    job = crash(server, details="segfault")
    path = f"/jobs/{job['uuid']}"
    with browser(server) as client:
        sign_in(client, server, "triage")
        csrf = csrf_of(client.get(path))
        bad = client.post(f"{path}/classification", data={"csrf": csrf, "cause": "Not A Code"})
        assert bad.status_code == 400
        assert "cause" in text_of(bad)
        json_body = client.post(f"{path}/classification", json={"csrf": csrf, "cause": "x.y"})
        assert json_body.status_code == 400
        assert "application/x-www-form-urlencoded" in text_of(json_body)
        window = client.get("/triage", params={"period": "fortnight"})
        assert window.status_code == 400
        assert "period: one of 24h, 7d, 30d" in text_of(window)
    with server.client() as api:
        assert api.get(f"/api/v1{path}").json()["classified_by"] is None
