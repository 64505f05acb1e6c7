"""Random report sequences through the HTTP API, checked against a model of a job's life.

The model below is written out on its own, from the documented rules, and does not use
`execdb.jobs.states.decide`: a mistake in `decide` (or in how the service applies it) makes
the server and the model disagree. Only the final check that every accepted switch is one
that `execdb.jobs.states.ALLOWED` lists uses the code's own table.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from execdb.jobs.states import ALLOWED
from tests.live import LiveServer

# What a job may become from each state: SCHEDULED -> RUNNING | CRASHED | CANCELLED,
# RUNNING -> FINISHED | CRASHED | CANCELLED, and the three ends are final.
NEXT: dict[str, frozenset[str]] = {
    "SCHEDULED": frozenset({"RUNNING", "CRASHED", "CANCELLED"}),
    "RUNNING": frozenset({"FINISHED", "CRASHED", "CANCELLED"}),
    "FINISHED": frozenset(),
    "CRASHED": frozenset(),
    "CANCELLED": frozenset(),
}
# Most eventful first: Hypothesis favours the first choices.
ORDER = ("RUNNING", "FINISHED", "CRASHED", "CANCELLED", "SCHEDULED")
# How a new job gets to each state, for the rules that start jobs part way through their life.
ROUTE: dict[str, tuple[str, ...]] = {
    "SCHEDULED": (),
    "RUNNING": ("RUNNING",),
    "FINISHED": ("RUNNING", "FINISHED"),
    "CRASHED": ("RUNNING", "CRASHED"),
    "CANCELLED": ("CANCELLED",),
}
ENDS = frozenset({"FINISHED", "CRASHED", "CANCELLED"})
BLAMES = frozenset({"TASKOTRON", "TASK", "THIRD_PARTY", "UNKNOWN"})
CAUSE_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
REPORTERS = ("admin", "report", "both")
MAX_JOBS = 3

ABSENT = object()  # a field left out of the report (as opposed to sent as null)

# The values each optional field of a report is drawn from, valid or not.
FIELD_VALUES: dict[str, list[Any]] = {
    "executor": [
        ABSENT,
        None,
        {"name": "buildbot", "build": 1},
        {"name": "buildbot", "build": 2},
        {"name": "jenkins", "log": "https://ci.example.org/1", "tags": ["a", 1, None]},
    ],
    "blame": [ABSENT, None, "TASK", "task", "Third_Party", "UNKNOWN", "taskotron", "nobody"],
    "cause": [
        ABSENT,
        None,
        "koji.timeout",
        "task.exception",
        "resources.oom",
        "custom.not_in_the_catalogue",  # valid code, unknown: accepted with a warning
        "Koji Timeout",  # not a code at all: 400
    ],
    "details": [ABSENT, None, "", "x", "disk full", "a\x00b"],
}
# The fields that fit a report of each state; any other field makes the report invalid.
FITTING: dict[str, tuple[str, ...]] = {
    "SCHEDULED": (),
    "RUNNING": ("executor",),
    "FINISHED": ("details",),
    "CRASHED": ("blame", "cause", "details"),
    "CANCELLED": ("details",),
}


def _mixed_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda lower: "".join(c.lower() if low else c for c, low in zip(word, lower, strict=True))
    )


STATE_TEXT = st.one_of(
    st.sampled_from(ORDER).flatmap(_mixed_case),
    st.sampled_from(["DONE", "", "running ", "SCHEDULE", "crash"]),
)


def _body(draw: st.DrawFn, state: str, fields: tuple[str, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {"state": state}
    for name in fields:
        value = draw(st.sampled_from(FIELD_VALUES[name]))
        if value is not ABSENT:
            body[name] = value
    return body


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    """Any report body: usually one whose fields fit its state, sometimes any mix."""
    state = draw(STATE_TEXT)
    fields = FITTING.get(state.upper(), tuple(FIELD_VALUES))
    if draw(st.integers(0, 3)) == 0:
        fields = tuple(FIELD_VALUES)
    return _body(draw, state, fields)


@st.composite
def reports_into(draw: st.DrawFn, states: list[str]) -> dict[str, Any]:
    """A report into one of `states`, with fields that fit it (content still random)."""
    state = draw(st.sampled_from(states))
    return _body(draw, draw(_mixed_case(state)), FITTING[state])


def invalid(body: dict[str, Any]) -> bool:
    """Whether the server must refuse this body with 400 (before looking at any job)."""
    state = body["state"].upper()
    blame, cause = body.get("blame"), body.get("cause")
    return (
        state not in NEXT
        or (blame is not None and (state != "CRASHED" or blame.upper() not in BLAMES))
        or (cause is not None and (state != "CRASHED" or not CAUSE_CODE.fullmatch(cause)))
        or (body.get("executor") is not None and state != "RUNNING")
        or (body.get("details") is not None and state not in ENDS)
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class ModelJob:
    uuid: str
    updated_at: str
    state: str = "SCHEDULED"
    executor: dict[str, Any] | None = None
    blame: str | None = None
    cause: str | None = None
    details: str | None = None
    ever_running: bool = False
    # (from_state, to_state, outcome, actor) of every recorded report, the creation first.
    history: list[tuple[str | None, str, str, str]] = field(default_factory=list)
    last_seen: dict[str, Any] = field(default_factory=dict)


class JobLife(RuleBasedStateMachine):
    """Creates a few jobs and sends them reports, keeping a model of what each must hold."""

    jobs = Bundle("jobs")

    def __init__(self, clients: dict[str, httpx.Client], blames: dict[str, str]) -> None:
        super().__init__()
        self.clients = clients
        self.default_blames = blames
        self.task = f"sm-{uuid.uuid4().hex[:12]}"
        self.model: dict[str, ModelJob] = {}
        self.last: tuple[str, str, dict[str, Any]] | None = None

    # -- rules -----------------------------------------------------------------------------

    @initialize(target=jobs, data=st.data())
    def first_job(self, data: st.DataObject) -> str:
        return self._create(data)

    @precondition(lambda self: len(self.model) < MAX_JOBS)
    @rule(target=jobs, data=st.data())
    def create(self, data: st.DataObject) -> str:
        return self._create(data)

    @rule(job=jobs, data=st.data(), token=st.sampled_from(REPORTERS))
    def send(self, job: str, data: st.DataObject, token: str) -> None:
        """A report into a next state, into any state, into the current one again (same
        content or not), or any report at all, valid or not."""
        model = self.model[job]
        onward = [state for state in ORDER if state in NEXT[model.state]]
        kinds = ["onward", "other", "again", "anything"]
        kind = data.draw(st.sampled_from(kinds if onward else kinds[1:]))
        if kind == "onward":
            body = data.draw(reports_into(onward))
        elif kind == "other":
            body = data.draw(reports_into(list(ORDER)))
        elif kind == "again":
            body = data.draw(reports_into([model.state]))
        else:
            body = data.draw(reports())
        self._report(job, token, body)

    @precondition(lambda self: self.last is not None)
    @rule()
    def repeat_last(self) -> None:
        assert self.last is not None
        self._report(*self.last)

    @rule(
        job=jobs,
        body=reports(),
        sender=st.sampled_from(["create", "revoked", "none", "to a missing job"]),
    )
    def send_no_report(self, job: str, body: dict[str, Any], sender: str) -> None:
        """A report by a token without the report scope, or about no job, changes nothing."""
        if sender == "to a missing job":
            missing = uuid.uuid4()
            response = self.clients["both"].patch(f"/api/v1/jobs/{missing}", json=body)
            assert response.status_code == (400 if invalid(body) else 404), response.text
            return
        response = self.clients[sender].patch(f"/api/v1/jobs/{job}", json=body)
        if invalid(body):
            assert response.status_code in (400, 401, 403), response.text
        else:
            assert response.status_code == (403 if sender == "create" else 401), response.text
        self._check_history(job)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def stored_jobs_match_the_model(self) -> None:
        response = self.clients["admin"].get(
            "/api/v1/jobs", params={"task": self.task, "limit": 1000}
        )
        assert response.status_code == 200, response.text
        # A search's jobs are the job as GET shows it, plus the text search's `match`.
        found = response.json()["data"]
        stored = {job["uuid"]: {k: v for k, v in job.items() if k != "match"} for job in found}
        assert stored.keys() == self.model.keys()
        for key, job in stored.items():
            self._check_job(self.model[key], job)

    def teardown(self) -> None:
        for key in self.model:
            self._check_history(key)

    # -- the model -------------------------------------------------------------------------

    def _create(self, data: st.DataObject) -> str:
        """A new job, taken on the way to a state drawn at random by ordinary reports."""
        response = self.clients["both"].post(
            "/api/v1/jobs",
            json={"task": self.task, "item": f"item-{len(self.model)}", "item_type": "koji_build"},
        )
        assert response.status_code == 201, response.text
        job = response.json()
        model = ModelJob(uuid=job["uuid"], updated_at=job["updated_at"], last_seen=job)
        model.history.append((None, "SCHEDULED", "accepted", "test-both"))
        self.model[job["uuid"]] = model
        self._check_job(model, job)
        self._check_history(job["uuid"])
        for state in ROUTE[data.draw(st.sampled_from(ORDER))]:
            self._report(job["uuid"], "both", data.draw(reports_into([state])))
        return str(job["uuid"])

    def _report(self, key: str, token: str, body: dict[str, Any]) -> None:
        self.last = (key, token, body)
        job = self.model[key]
        response = self.clients[token].patch(f"/api/v1/jobs/{key}", json=body)
        said = f"{job.state} job, {body} -> {response.status_code} {response.text}"

        if invalid(body):
            # Invalid input is not a report: refused up front, not recorded, nothing changes.
            assert response.status_code == 400, said
            assert response.json()["message"]
            self._check_history(key)
            return

        requested = body["state"].upper()
        executor, cause = body.get("executor"), body.get("cause")
        details = body.get("details")
        if details is not None:
            details = details.replace("\x00", "\ufffd")
        content: dict[str, Any] = {}
        if requested == "RUNNING":
            # A RUNNING report says who runs the job, when it says it.
            if executor is not None:
                content["executor"] = executor
        elif requested in ENDS:
            # A final report says all there is about the end: what it leaves out is cleared.
            blame = body.get("blame")
            if requested == "CRASHED":
                blame = blame.upper() if blame else self.default_blames.get(cause, "UNKNOWN")
            content = {"blame": blame, "cause": cause, "details": details}
        same = requested == job.state and all(getattr(job, k) == v for k, v in content.items())

        before = job.state
        if same:
            outcome = "repeated"
            assert response.status_code == 200, said
            answer = response.json()
            answer.pop("warnings")
            assert answer == job.last_seen
        elif requested in NEXT[job.state]:
            outcome = "accepted"
            assert response.status_code == 200, said
            answer = response.json()
            unknown_cause = requested == "CRASHED" and cause and cause not in self.default_blames
            assert any("cause" in w for w in answer["warnings"]) == bool(unknown_cause)
            job.state = requested
            for name, value in content.items():
                setattr(job, name, value)
            job.ever_running = job.ever_running or requested == "RUNNING"
            assert _time(answer["updated_at"]) > _time(job.updated_at)
            job.updated_at = answer["updated_at"]
            self._check_job(job, answer)
        else:
            outcome = "refused"
            assert response.status_code == 409, said
            assert response.json()["state"] == job.state
        job.history.append((before, requested, outcome, f"test-{token}"))

        # The stored job is compared with the model by the invariant, after every step.
        self._check_history(key)

    def _check_job(self, model: ModelJob, job: dict[str, Any]) -> None:
        assert job["state"] in NEXT
        assert (job["state"], job["executor"], job["blame"], job["cause"], job["details"]) == (
            model.state,
            model.executor,
            model.blame,
            model.cause,
            model.details,
        )
        assert (job["started_at"] is not None) == model.ever_running, job
        assert (job["finished_at"] is not None) == (model.state in ENDS), job
        if job["started_at"] is not None and job["finished_at"] is not None:
            assert _time(job["started_at"]) <= _time(job["finished_at"])
        assert job["updated_at"] == model.updated_at
        model.last_seen = {k: v for k, v in job.items() if k != "warnings"}

    def _check_history(self, key: str) -> None:
        response = self.clients["admin"].get(f"/api/v1/jobs/{key}/events", params={"limit": 1000})
        assert response.status_code == 200, response.text
        events = response.json()["data"]
        recorded = [(e["from_state"], e["to_state"], e["outcome"], e["actor"]) for e in events]
        assert recorded == self.model[key].history
        # Every switch that took effect is one the code's own table allows.
        for before, after, outcome, _ in recorded[1:]:
            if outcome == "accepted":
                assert before is not None
                assert after in ALLOWED[before]  # type: ignore[index]


def test_random_reports_follow_the_model(server: LiveServer) -> None:
    clients = {name: server.client(name) for name in (*REPORTERS, "create", "revoked")}
    clients["none"] = server.client()
    try:
        causes = clients["admin"].get("/api/v1/causes").json()["data"]
        blames = {cause["code"]: cause["blame"] for cause in causes}
        run_state_machine_as_test(
            lambda: JobLife(clients, blames),
            settings=settings(
                max_examples=30,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                # No explain phase: re-running a failure under tracing takes minutes here.
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            ),
        )
    finally:
        for client in clients.values():
            client.close()


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"state": "finished", "blame": "TASK"}, True),
        ({"state": "RUNNING", "cause": "koji.timeout"}, True),
        ({"state": "Cancelled", "executor": {"name": "x"}}, True),
        ({"state": "CRASHED", "cause": "Koji Timeout"}, True),
        ({"state": "CRASHED", "blame": "nobody"}, True),
        ({"state": "crashed", "blame": "third_party", "cause": "custom.thing"}, False),
        ({"state": "running", "details": "would be kept nowhere"}, True),
        ({"state": "scheduled", "details": "x"}, True),
        ({"state": "cancelled", "details": "superseded"}, False),
    ],
)
def test_the_model_knows_invalid_reports(body: dict[str, Any], bad: bool) -> None:
    """The model's own validity rules, pinned so that a slip in them cannot hide a bug."""
    assert invalid(body) is bad
