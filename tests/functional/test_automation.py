"""Rescheduling, retries, the watchdog, heartbeats, dispatch and notifications, over HTTP.

Each test runs a real server (background work off) and drives the worker itself with a chosen
`now`, so that backoffs and limits are crossed without waiting for them. Webhooks go to a real
HTTP receiver and e-mail to a real SMTP server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from execdb.db import utcnow
from execdb.worker import Tick, Worker
from tests.doubles import RecordingSenders
from tests.executor import run
from tests.helpers import events, job_in, report
from tests.live import LiveServer, StartServer
from tests.receivers import MailReceiver, WebhookReceiver


def tick(server: LiveServer, later: timedelta = timedelta(0)) -> Tick:
    async def once() -> Tick:
        async with Worker(server.services, name="test") as worker:
            return await worker.tick(utcnow() + later)

    return asyncio.run(once())


def crash(server: LiveServer, uuid: str, **body: Any) -> dict[str, Any]:
    with server.client("report") as client:
        answer = report(client, uuid, state="CRASHED", **body)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def get(server: LiveServer, uuid: str) -> dict[str, Any]:
    with server.client() as client:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{uuid}").json()
    return job


def deliveries(server: LiveServer, uuid: str) -> list[dict[str, Any]]:
    with server.client() as client:
        answer = client.get(f"/api/v1/jobs/{uuid}/deliveries")
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"data"}, "the list envelope of every list"
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def start(make_server: StartServer, **settings: Any) -> LiveServer:
    return make_server(base_url="https://execdb.example.org", **settings)


# --- rescheduling -----------------------------------------------------------------------


def test_a_crashed_job_is_rescheduled_once_as_its_next_attempt(make_server: StartServer) -> None:
    server = start(make_server)
    with server.client("both") as client:
        old = job_in(client, "CRASHED", trigger_data={"koji_task": 42}, msg_id="m-1")
    with server.client("create") as client:
        answer = client.post(f"/api/v1/jobs/{old['uuid']}/reschedule")
        assert answer.status_code == 201, answer.text
        new = answer.json()
        again = client.post(f"/api/v1/jobs/{old['uuid']}/reschedule")
    assert again.status_code == 200
    assert again.json()["uuid"] == new["uuid"]
    assert new["state"] == "SCHEDULED"
    assert new["attempt"] == 2
    assert new["rescheduled_from"] == old["uuid"]
    for key in ("task", "item", "item_type", "arch", "msg_id", "trigger_data"):
        assert new[key] == old[key]
    assert get(server, old["uuid"])["rescheduled_as"] == new["uuid"]
    with server.client() as client:
        old_history = events(client, old["uuid"])
        new_history = events(client, new["uuid"])
        chain = client.get("/api/v1/jobs", params={"msg_id": "m-1"}).json()["data"]
    assert old_history[-1]["message"] == f"rescheduled as {new['uuid']} (attempt 2)"
    assert old_history[-1]["actor"] == "test-create"
    assert new_history[0]["message"] == f"created: rescheduled of {old['uuid']}"
    # The attempt chain is found by the bus message, newest first.
    assert [j["attempt"] for j in chain] == [2, 1]


def test_only_an_ended_job_is_rescheduled(make_server: StartServer) -> None:
    server = start(make_server)
    with server.client("both") as client:
        running = job_in(client, "RUNNING")
        finished = job_in(client, "FINISHED")
        cancelled = job_in(client, "CANCELLED")
    with server.client("admin") as client:
        refused = client.post(f"/api/v1/jobs/{running['uuid']}/reschedule")
        assert refused.status_code == 409
        assert refused.json()["state"] == "RUNNING"
        refused = client.post(f"/api/v1/jobs/{finished['uuid']}/reschedule")
        assert refused.status_code == 409
        assert '(send {"force": true} to run a FINISHED job again)' in refused.json()["message"]
        forced = client.post(f"/api/v1/jobs/{finished['uuid']}/reschedule", json={"force": True})
        assert forced.status_code == 201
        assert client.post(f"/api/v1/jobs/{cancelled['uuid']}/reschedule").status_code == 201
        missing = client.post("/api/v1/jobs/0190b6d4-0000-7000-8000-000000000000/reschedule")
        assert missing.status_code == 404
        bad = client.post(f"/api/v1/jobs/{cancelled['uuid']}/reschedule", json={"forse": True})
        assert bad.status_code == 400
    with server.client("report") as client:
        assert client.post(f"/api/v1/jobs/{cancelled['uuid']}/reschedule").status_code == 403
    # A refused reschedule changed nothing.
    assert get(server, running["uuid"])["rescheduled_as"] is None


# --- retries by policy -------------------------------------------------------------------


def test_a_third_party_crash_is_retried_by_policy_until_the_limit(
    make_server: StartServer,
) -> None:
    server = start(make_server)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    crashed = crash(server, job["uuid"], cause="koji.timeout", details="koji did not answer")
    assert crashed["blame"] == "THIRD_PARTY"
    due = datetime.fromisoformat(crashed["retry_at"])
    assert timedelta(minutes=4) < due - utcnow() <= timedelta(minutes=5)

    with server.client() as client:
        page = client.get(f"/jobs/{job['uuid']}").text
    assert "ExecDB will run it again at" in page

    assert tick(server, timedelta(minutes=4)).retried == 0
    assert tick(server, timedelta(minutes=6)).retried == 1
    assert tick(server, timedelta(minutes=6)).retried == 0  # never twice
    old = get(server, job["uuid"])
    assert old["retry_at"] is None
    second = get(server, old["rescheduled_as"])
    assert (second["attempt"], second["rescheduled_from"]) == (2, job["uuid"])
    with server.client() as client:
        assert events(client, job["uuid"])[-1]["actor"] == "execdb"
        assert events(client, job["uuid"])[-1]["message"].startswith("retry by policy as")

    with server.client("report") as client:
        report(client, second["uuid"], state="RUNNING")
    assert crash(server, second["uuid"], cause="koji.timeout")["retry_at"] is not None
    assert tick(server, timedelta(minutes=20)).retried == 1
    third = get(server, get(server, second["uuid"])["rescheduled_as"])
    assert third["attempt"] == 3
    last = crash(server, third["uuid"], cause="koji.timeout")
    assert last["retry_at"] is None  # the shipped policy stops at 3 attempts
    assert tick(server, timedelta(days=30)).retried == 0


KOJI_LOG = (
    "[libtaskotron:koji_utils.py:88] 2026-12-02 12:00:01 DEBUG querying koji\n"
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)\n"
)


def test_a_crash_the_rules_blame_on_a_third_party_is_retried(make_server: StartServer) -> None:
    server = start(make_server)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    crashed = crash(server, job["uuid"], cause="status_file.missing", log=KOJI_LOG)
    assert (crashed["blame"], crashed["cause"]) == ("THIRD_PARTY", "koji.timeout")
    due = datetime.fromisoformat(crashed["retry_at"])
    assert timedelta(minutes=4) < due - utcnow() <= timedelta(minutes=5)
    assert tick(server, timedelta(minutes=6)).retried == 1


def test_a_late_success_cancels_the_pending_retry(make_server: StartServer) -> None:
    server = start(make_server)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    tick(server, timedelta(hours=7))  # the watchdog crashes it, and the crash is retryable
    assert get(server, job["uuid"])["retry_at"] is not None
    with server.client("report") as client:
        answer = report(client, job["uuid"], state="FINISHED")
    assert answer.status_code == 200
    assert answer.json()["retry_at"] is None
    assert tick(server, timedelta(days=1)).retried == 0


# --- the watchdog and heartbeats ---------------------------------------------------------


def test_the_watchdog_crashes_an_abandoned_job_and_the_executor_may_overrule_it(
    make_server: StartServer,
) -> None:
    server = start(make_server)
    with server.client("both") as client:
        running = job_in(client, "RUNNING")
        scheduled = job_in(client, "SCHEDULED")
    assert tick(server, timedelta(hours=5)).crashed == 0
    assert tick(server, timedelta(hours=7)).crashed == 1
    crashed = get(server, running["uuid"])
    assert (crashed["state"], crashed["blame"], crashed["cause"]) == (
        "CRASHED",
        "TASKOTRON",
        "watchdog.timeout",
    )
    assert tick(server, timedelta(hours=25)).crashed == 1
    assert get(server, scheduled["uuid"])["cause"] == "watchdog.not_started"

    # The executor was alive after all: its own report replaces the watchdog's verdict.
    with server.client("report") as client:
        answer = report(client, running["uuid"], state="FINISHED")
        assert answer.status_code == 200, answer.text
        history = events(client, running["uuid"])
    assert answer.json()["state"] == "FINISHED"
    assert [(e["actor"], e["to_state"], e["outcome"]) for e in history[-2:]] == [
        ("execdb", "CRASHED", "accepted"),
        ("test-report", "FINISHED", "replaced"),
    ]


def test_a_job_whose_heartbeats_stop_is_crashed_sooner(make_server: StartServer) -> None:
    server = start(make_server, watchdog={"heartbeat": "10m"})
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        quiet = job_in(client, "RUNNING")
        scheduled = job_in(client, "SCHEDULED")
        beat = client.post(f"/api/v1/jobs/{job['uuid']}/heartbeat")
        assert beat.status_code == 200, beat.text
        assert beat.json()["heartbeat_at"] is not None
        refused = client.post(f"/api/v1/jobs/{scheduled['uuid']}/heartbeat")
        assert refused.status_code == 409
        assert refused.json()["state"] == "SCHEDULED"
        unknown = client.post("/api/v1/jobs/0190b6d4-0000-7000-8000-000000000000/heartbeat")
        assert unknown.status_code == 404
    assert tick(server, timedelta(minutes=9)).crashed == 0
    assert tick(server, timedelta(minutes=11)).crashed == 1
    gone = get(server, job["uuid"])
    assert (gone["state"], gone["cause"]) == ("CRASHED", "executor.lost")
    assert get(server, quiet["uuid"])["state"] == "RUNNING"  # no heartbeats: the 6h limit
    with server.client("report") as client:
        late = client.post(f"/api/v1/jobs/{job['uuid']}/heartbeat")
    assert late.status_code == 409  # tells a live executor that its job was given up


# --- notifications -----------------------------------------------------------------------


@pytest.fixture
def mail() -> Any:
    with MailReceiver() as receiver:
        yield receiver


@pytest.fixture
def hooks() -> Any:
    with WebhookReceiver() as receiver:
        yield receiver


def notifying(make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver) -> LiveServer:
    return start(
        make_server,
        notify={
            "admins": ["admins@example.org", "webhook:ops"],
            "contacts": {"rpm*": ["rpm-maintainers@example.org"]},
            "webhooks": {"ops": {"url": hooks.url + "/ops", "secret": "s3cret"}},
            "smtp": {"host": "127.0.0.1", "port": mail.port, "sender": "execdb@example.org"},
        },
    )


def test_a_task_crash_mails_the_task_maintainers(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    server = notifying(make_server, mail, hooks)
    with server.client("both") as client:
        job = job_in(client, "RUNNING", trigger_data={"contacts": ["packager@example.org"]})
    crash(server, job["uuid"], cause="task.exception", details="Traceback: KeyError 'nvr'")
    done = tick(server)
    assert (done.delivered, done.failed) == (1, 0)
    (message,) = mail.wait_for(1)
    assert mail.envelopes == [["rpm-maintainers@example.org", "packager@example.org"]]
    assert message["From"] == "execdb@example.org"
    assert "rpmlint crashed on xchat-2.8.8-21.fc40 (TASK: task.exception)" in message["Subject"]
    body = message.get_content()
    for expected in (
        f"https://execdb.example.org/jobs/{job['uuid']}",
        "Blame:    TASK",
        "Cause:    task.exception",
        "Attempt:  1",
        "Traceback: KeyError 'nvr'",
    ):
        assert expected in body
    (sent,) = deliveries(server, job["uuid"])
    listed = run(server.url, "", "job", "deliveries", job["uuid"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:4] == [
        sent["kind"],
        sent["sink"],
        "delivered",
        "1",
    ]
    assert message["Message-ID"] == f"<{sent['uuid']}@execdb>"
    assert (sent["status"], sent["attempts"], sent["recipients"]) == (
        "delivered",
        1,
        ["rpm-maintainers@example.org", "packager@example.org"],
    )
    assert hooks.received == []  # the admins were not told of the task's bug
    assert tick(server).delivered == 0  # once only
    with server.client() as client:
        page = client.get(f"/jobs/{job['uuid']}").text
    assert "Sent about this job" in page
    assert "rpm-maintainers@example.org, packager@example.org" in page


def test_a_crash_the_rules_blame_on_the_task_mails_its_maintainers(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    server = notifying(make_server, mail, hooks)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    log = "Last metadata expiration check: 0:01:02 ago.\nNo match for argument: python3-nosuch\n"
    crashed = crash(server, job["uuid"], log=log)
    assert (crashed["blame"], crashed["classified_by"]) == ("TASK", "rules")
    assert crashed["retry_at"] is None
    assert tick(server).delivered == 1
    (message,) = mail.wait_for(1)
    assert mail.envelopes == [["rpm-maintainers@example.org"]]
    assert f"(TASK: {crashed['cause']})" in message["Subject"]
    assert hooks.received == []


def test_bad_trigger_contacts_are_left_out_shown_and_the_rest_mailed(
    make_server: StartServer, mail: MailReceiver
) -> None:
    server = start(
        make_server,
        notify={
            "contacts": {"rpm*": ["rpm-maintainers@example.org"]},
            "max_contacts": 3,
            "smtp": {"host": "127.0.0.1", "port": mail.port},
        },
    )
    contacts = [
        "packager@example.org",
        "evil@example.org\r\nBcc: everyone@example.org",
        "Co-Packager@EXAMPLE.org",
        "fourth@example.org",
    ]
    with server.client("both") as client:
        job = job_in(client, "RUNNING", trigger_data={"contacts": contacts})
    crash(server, job["uuid"], cause="task.exception")
    done = tick(server)
    assert (done.delivered, done.failed) == (1, 0)
    mail.wait_for(1)
    assert mail.envelopes == [
        ["rpm-maintainers@example.org", "packager@example.org", "Co-Packager@example.org"]
    ]
    (sent,) = deliveries(server, job["uuid"])
    assert sent["status"] == "delivered"
    dropped = sent["payload"]["dropped_contacts"]
    assert len(dropped) == 2
    assert dropped[0].startswith(
        "'evil@example.org\\r\\nBcc: everyone@example.org' is not an e-mail address: "
    )
    assert dropped[1] == "1 more contact(s): only the first 3 are used (the max_contacts setting)"
    with server.client() as client:
        page = client.get(f"/jobs/{job['uuid']}").text
    assert "Contact left out: &#39;evil@example.org\\r\\nBcc: everyone@example.org&#39;" in page
    assert "Contact left out: 1 more contact(s): only the first 3 are used" in page


def test_third_party_crashes_reach_the_admins_only_once_retries_are_exhausted(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    server = notifying(make_server, mail, hooks)
    with server.client("both") as client:
        job = job_in(client, "RUNNING", task="depcheck")
    crash(server, job["uuid"], cause="koji.timeout")
    assert tick(server).delivered == 0  # a retry is pending: nobody is told
    uuid = job["uuid"]
    for _ in range(2):
        tick(server, timedelta(hours=1))
        uuid = get(server, uuid)["rescheduled_as"]
        with server.client("report") as client:
            report(client, uuid, state="RUNNING")
        crash(server, uuid, cause="koji.timeout", details="still down")
    assert get(server, uuid)["attempt"] == 3
    assert tick(server).delivered == 2  # the last attempt: mail and webhook to the admins
    (message,) = mail.wait_for(1)
    assert mail.envelopes == [["admins@example.org"]]
    assert "koji.timeout" in message["Subject"]
    (hook,) = hooks.wait_for(1)
    assert hook.path == "/ops"
    expected = "sha256=" + hmac.new(b"s3cret", hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-execdb-signature"] == expected
    payload = hook.json()
    assert payload["event"] == "job.crashed"
    assert payload["id"] == hook.headers["x-execdb-delivery"]
    assert (payload["job"]["uuid"], payload["job"]["attempt"]) == (uuid, 3)
    assert payload["job"]["page"] == f"https://execdb.example.org/jobs/{uuid}"
    assert payload["retry"]["at"] is None
    assert "koji" in payload["cause_description"].lower()


def test_a_failed_delivery_is_tried_again_with_backoff_and_shows(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    server = notifying(make_server, mail, hooks)
    hooks.answers = [500]
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    crash(server, job["uuid"], blame="TASKOTRON", cause="minion.timeout")
    with server.client("admin") as client:
        client.post(f"/api/v1/jobs/{job['uuid']}/reschedule")  # no retry is pending now
    done = tick(server)
    assert (done.delivered, done.failed) == (1, 1)  # the mail went; the webhook did not
    hook = next(d for d in deliveries(server, job["uuid"]) if d["sink"] == "webhook:ops")
    assert (hook["status"], hook["attempts"]) == ("pending", 1)
    assert "HTTP 500" in hook["last_error"]
    assert tick(server).delivered == 0  # not due yet
    assert tick(server, timedelta(seconds=11)).delivered == 1
    first, second = hooks.wait_for(2)
    assert first.headers["x-execdb-delivery"] == second.headers["x-execdb-delivery"]
    hook = next(d for d in deliveries(server, job["uuid"]) if d["sink"] == "webhook:ops")
    assert (hook["status"], hook["attempts"], hook["last_error"]) == ("delivered", 2, None)


def test_a_worker_whose_lease_ran_out_records_no_failure(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    """Only the holder of the current lease records a failure: the late news of a worker
    whose lease ran out must not undo what the worker now holding the delivery is doing."""
    server = notifying(make_server, mail, hooks)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    crash(server, job["uuid"], blame="TASK", cause="task.exception")
    outbox = server.services.outbox
    now = utcnow()
    (first,) = outbox.lease("first", now, now)
    later = now + server.settings.delivery.lease + timedelta(seconds=1)
    (second,) = outbox.lease("second", later, later)
    assert second["id"] == first["id"]

    assert outbox.failed(first, "timed out (first worker)", later) is True
    (held,) = deliveries(server, job["uuid"])
    assert (held["status"], held["attempts"], held["last_error"]) == ("pending", 2, None)
    assert outbox.lease("third", later, later) == []  # still the second worker's

    outbox.failed(second, "refused (second worker)", later)
    (held,) = deliveries(server, job["uuid"])
    assert held["last_error"] == "refused (second worker)"


def test_a_delivery_that_fails_unexpectedly_does_not_stop_the_others(
    make_server: StartServer, mail: MailReceiver, hooks: WebhookReceiver
) -> None:
    server = notifying(make_server, mail, hooks)
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    crash(server, job["uuid"], blame="TASKOTRON", cause="minion.timeout")

    def fails(delivery: Mapping[str, Any]) -> None:
        if delivery["sink"] == "email":
            raise RuntimeError("a bug in the e-mail sender")

    senders = RecordingSenders(fails)

    async def once() -> Tick:
        async with Worker(server.services, name="test", sender_for=senders) as worker:
            return await worker.tick(utcnow())

    assert asyncio.run(once()) == Tick(delivered=1, failed=1)
    assert [d["sink"] for d in senders.sent] == ["webhook:ops"]
    sent = {d["sink"]: d for d in deliveries(server, job["uuid"])}
    assert sent["webhook:ops"]["status"] == "delivered"
    assert sent["email"]["status"] == "pending"
    assert sent["email"]["last_error"] == "RuntimeError: a bug in the e-mail sender"


# --- dispatch ----------------------------------------------------------------------------


def test_a_rescheduled_job_is_dispatched_to_a_webhook(
    make_server: StartServer, hooks: WebhookReceiver
) -> None:
    server = start(
        make_server,
        dispatch={"kind": "webhook", "url": hooks.url + "/trigger", "secret": "k"},
        delivery={"max_attempts": 2},
    )
    hooks.answers = [503, 503]
    with server.client("both") as client:
        old = job_in(client, "CANCELLED")
        new = client.post(f"/api/v1/jobs/{old['uuid']}/reschedule").json()
    assert new["dispatch_state"] == "pending"
    tick(server)
    waiting = get(server, new["uuid"])
    assert (waiting["dispatch_state"], waiting["state"]) == ("pending", "SCHEDULED")
    assert "HTTP 503" in waiting["dispatch_error"]
    with server.client() as client:
        page = client.get(f"/jobs/{new['uuid']}").text
    assert "waiting to be started" in page
    assert "HTTP 503" in page
    tick(server, timedelta(minutes=1))
    failed = get(server, new["uuid"])
    assert failed["dispatch_state"] == "failed"  # given up, and it shows; the job is kept

    # An admin tries again once the trigger is back.
    assert server.services.outbox.retry_failed(utcnow(), None) == 1
    assert get(server, new["uuid"])["dispatch_state"] == "pending"
    assert tick(server).delivered == 1
    sent = get(server, new["uuid"])
    assert (sent["dispatch_state"], sent["dispatch_error"]) == ("sent", None)
    last = hooks.wait_for(3)[-1]
    assert last.path == "/trigger"
    assert last.headers["x-execdb-event"] == "job.rescheduled"
    assert last.headers["x-execdb-signature"] == (
        "sha256=" + hmac.new(b"k", last.body, hashlib.sha256).hexdigest()
    )
    assert last.json()["job"]["uuid"] == new["uuid"]
    assert last.json()["job"]["attempt"] == 2
