"""GET /api/v1/stats on both backends, against answers worked out here from the seeded jobs.

The jobs are made through the job service with explicit times (the API always stamps `now`);
the chains of attempts are linked with an UPDATE, as a rescheduler would.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from execdb.jobs.models import Job
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.vocabulary import Actor
from tests.live import LiveServer, StartServer

ACTOR = Actor("test-seed")
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
WINDOW = "2026-03-02,2026-03-04"  # a bare end date means the whole of that day
STATES = ("SCHEDULED", "RUNNING", "FINISHED", "CRASHED", "CANCELLED")
BLAMES = ("TASKOTRON", "TASK", "THIRD_PARTY", "UNKNOWN")


@dataclass(frozen=True)
class Spec:
    task: str
    item_type: str
    arch: str | None
    hours: float  # created at MONDAY + hours
    state: str
    queue: float | None = None  # seconds from created to started (None: never started)
    run: float | None = None  # seconds from started to finished
    blame: str | None = None
    cause: str | None = None
    retried_as: int | None = None  # index of the next attempt

    @property
    def created(self) -> datetime:
        return MONDAY + timedelta(hours=self.hours)


SPECS = [
    Spec("rpmlint", "koji_build", "x86_64", 1, "FINISHED", 2.0, 60.0),
    Spec("rpmlint", "koji_build", "aarch64", 1.5, "FINISHED", 4.5, 120.25),
    Spec(
        "rpmlint",
        "koji_build",
        "x86_64",
        5,
        "CRASHED",
        1.0,
        30.5,
        "THIRD_PARTY",
        "koji.timeout",
        retried_as=3,
    ),
    Spec("rpmlint", "koji_build", "x86_64", 26, "FINISHED", 3.0, 45.0),
    Spec(
        "depcheck",
        "bodhi_update",
        None,
        26.25,
        "CRASHED",
        10.0,
        300.0,
        "THIRD_PARTY",
        "koji.build_not_found",
        retried_as=5,
    ),
    Spec(
        "depcheck",
        "bodhi_update",
        None,
        27,
        "CRASHED",
        0.5,
        10.0,
        "THIRD_PARTY",
        "koji.build_not_found",
    ),
    Spec("depcheck", "bodhi_update", None, 28, "RUNNING", 7.25),
    Spec("abicheck", "koji_build", "noarch", 29, "CRASHED"),  # no cause: blame UNKNOWN
    Spec("abicheck", "koji_build", "x86_64", 50, "CRASHED", 2.5, 12.0, "TASK", "brand.new_thing"),
    Spec(
        "abicheck",
        "koji_build",
        "x86_64",
        51,
        "CRASHED",
        6.0,
        3.0,
        "UNKNOWN",
        "network.dns",
        retried_as=10,
    ),
    Spec("abicheck", "koji_build", "x86_64", 52, "SCHEDULED"),
    Spec("rpmlint", "koji_build", "aarch64", 53, "CANCELLED"),
    Spec(
        "rpmlint",
        "koji_build",
        "x86_64",
        70,
        "CRASHED",
        1.5,
        90.0,
        "TASKOTRON",
        "minion.creation_failed",
    ),
    # Outside the window, on either side.
    Spec("rpmlint", "koji_build", "x86_64", -48, "CRASHED", 1.0, 1.0, "TASK", "task.exception"),
    Spec("rpmlint", "koji_build", "x86_64", 24 * 3, "FINISHED", 1.0, 1.0),
]
INSIDE = list(range(13))
UNCATEGORIZED = [7, 8, 9]  # no cause; a cause the catalogue lacks; blame UNKNOWN


def make(server: LiveServer, specs: list[Spec]) -> list[str]:
    """The jobs of `specs`, in order, through the job service; their UUIDs."""
    jobs = server.services.jobs
    uuids = []
    for spec in specs:
        new = JobCreate(
            task=spec.task, item="pkg-1.0-1.fc44", item_type=spec.item_type, arch=spec.arch
        )
        job, _ = jobs.create(new, ACTOR, spec.created)
        at = spec.created
        if spec.queue is not None:
            at += timedelta(seconds=spec.queue)
            jobs.report(job["uuid"], JobReport(state="RUNNING"), ACTOR, at)
        if spec.state not in ("SCHEDULED", "RUNNING"):
            at += timedelta(seconds=spec.run or 0)
            ending = JobReport.model_validate(
                {"state": spec.state, "blame": spec.blame, "cause": spec.cause}
            )
            jobs.report(job["uuid"], ending, ACTOR, at)
        uuids.append(job["uuid"])
    with server.services.db.write() as conn:
        for n, spec in enumerate(specs):
            if spec.retried_as is not None:
                later = spec.retried_as
                conn.execute(
                    update(Job).where(Job.uuid == uuids[n]).values(rescheduled_as=uuids[later])
                )
                conn.execute(
                    update(Job)
                    .where(Job.uuid == uuids[later])
                    .values(rescheduled_from=uuids[n], attempt=2)
                )
    return [str(u) for u in uuids]


@pytest.fixture
def seeded(server: LiveServer) -> list[str]:
    return make(server, SPECS)


def stats(server: LiveServer, **params: Any) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_state(indexes: list[int]) -> dict[str, int]:
    counted = Counter(SPECS[i].state for i in indexes)
    return {state: counted[state] for state in STATES}


def crash_rate(indexes: list[int]) -> float | None:
    counted = by_state(indexes)
    ran = counted["FINISHED"] + counted["CRASHED"]
    return counted["CRASHED"] / ran if ran else None


def percentiles(values: list[float]) -> dict[str, Any]:
    # statistics' "inclusive" method interpolates between closest ranks, as percentile_cont.
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"count": len(values), "p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def approx_durations(found: dict[str, Any], values: list[float]) -> None:
    expected = percentiles(values)
    assert found["count"] == expected["count"]
    for p in ("p50", "p90", "p99"):
        assert found[p] == pytest.approx(expected[p], abs=1e-6), p


def test_totals_rates_durations_and_causes(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since=WINDOW)

    assert found["window"] == {
        "start": "2026-03-02T00:00:00Z",
        "end": "2026-03-04T23:59:59.999999Z",
    }
    assert found["total"] == len(INSIDE)
    assert found["by_state"] == by_state(INSIDE)
    assert found["crash_rate"] == pytest.approx(crash_rate(INSIDE))
    assert found["crash_rate"] == pytest.approx(7 / 10)

    crashed = [SPECS[i] for i in INSIDE if SPECS[i].state == "CRASHED"]
    blames = Counter(s.blame or "UNKNOWN" for s in crashed)
    assert found["by_blame"] == {b: blames[b] for b in BLAMES}
    assert found["by_cause"] == [
        {"cause": "koji.build_not_found", "count": 2, "in_catalogue": True},
        {"cause": "brand.new_thing", "count": 1, "in_catalogue": False},
        {"cause": "koji.timeout", "count": 1, "in_catalogue": True},
        {"cause": "minion.creation_failed", "count": 1, "in_catalogue": True},
        {"cause": "network.dns", "count": 1, "in_catalogue": True},
        {"cause": None, "count": 1, "in_catalogue": False},
    ]

    started = [SPECS[i] for i in INSIDE if SPECS[i].queue is not None]
    approx_durations(found["queue_time"], [s.queue for s in started if s.queue is not None])
    ended = [s.run or 0.0 for s in started if s.state not in ("SCHEDULED", "RUNNING")]
    approx_durations(found["run_time"], ended)
    assert found["run_time"]["p50"] == pytest.approx(45.0)
    assert found["groups"] == []
    assert found["series"] is None


def test_no_jobs_gives_zeros_and_nulls(server: LiveServer) -> None:
    found = stats(server, since=WINDOW, group_by="task", interval="day")
    assert found["total"] == 0
    assert found["crash_rate"] is None
    assert found["queue_time"] == {"count": 0, "p50": None, "p90": None, "p99": None}
    assert found["run_time"]["p99"] is None
    assert found["retries"]["share"] is None
    assert found["groups"] == []
    assert [b["total"] for b in found["series"]["buckets"]] == [0, 0, 0]


def test_percentiles_of_one_job(server: LiveServer) -> None:
    make(server, [Spec("rpmlint", "koji_build", None, 3, "FINISHED", 0.125, 7.0)])
    found = stats(server, since=WINDOW)
    assert found["queue_time"] == {"count": 1, "p50": 0.125, "p90": 0.125, "p99": 0.125}
    assert found["run_time"] == {"count": 1, "p50": 7.0, "p90": 7.0, "p99": 7.0}


def test_percentiles_of_many_durations(server: LiveServer) -> None:
    # Distinct, unevenly spread run times: the interpolation has to pick the right ranks.
    runs = [round(1.5 + (n * 37 % 101) * 0.731, 3) for n in range(101)]
    make(server, [Spec("t", "k", None, 1 + n / 60, "FINISHED", 1.0, r) for n, r in enumerate(runs)])
    found = stats(server, since=WINDOW)
    approx_durations(found["run_time"], runs)


@pytest.mark.parametrize(
    ("group_by", "key"),
    [
        ("task", lambda s: (s.task,)),
        ("arch", lambda s: (s.arch,)),
        ("item_type", lambda s: (s.item_type,)),
        ("state", lambda s: (s.state,)),
        ("cause", lambda s: (s.cause,)),
        ("blame", lambda s: (s.blame or ("UNKNOWN" if s.state == "CRASHED" else None),)),
        ("task,state", lambda s: (s.task, s.state)),
        ("cause,arch", lambda s: (s.cause, s.arch)),
    ],
)
def test_group_by(server: LiveServer, seeded: list[str], group_by: str, key: Any) -> None:
    found = stats(server, since=WINDOW, group_by=group_by)
    names = group_by.split(",")
    members: dict[tuple[str | None, ...], list[int]] = {}
    for i in INSIDE:
        members.setdefault(key(SPECS[i]), []).append(i)
    expected = {
        values: {"total": len(idx), "by_state": by_state(idx), "crash_rate": crash_rate(idx)}
        for values, idx in members.items()
    }
    assert found["group_by"] == names
    got = {
        tuple(g["key"][n] for n in names): {k: g[k] for k in ("total", "by_state", "crash_rate")}
        for g in found["groups"]
    }
    assert got == expected
    totals = [g["total"] for g in found["groups"]]
    assert totals == sorted(totals, reverse=True), "largest group first"
    assert found["total"] == len(INSIDE), "grouping changes no totals"


def test_daily_series_with_states(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since=WINDOW, interval="day")
    buckets = found["series"]["buckets"]
    assert found["series"]["interval"] == "day"
    assert [b["start"] for b in buckets] == [
        "2026-03-02T00:00:00Z",
        "2026-03-03T00:00:00Z",
        "2026-03-04T00:00:00Z",
    ]
    for day, bucket in enumerate(buckets):
        idx = [i for i in INSIDE if SPECS[i].created.day == 2 + day]
        assert bucket["total"] == len(idx)
        assert bucket["by_state"] == by_state(idx)
        assert bucket["crash_rate"] == (
            pytest.approx(crash_rate(idx)) if crash_rate(idx) is not None else None
        )
        assert bucket["groups"] == []


def test_hourly_series_has_every_hour(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since="2026-03-02T00:30:00Z,2026-03-03T05:00:00Z", interval="hour")
    buckets = found["series"]["buckets"]
    assert len(buckets) == 30, "00:00 on the 2nd up to 05:00 on the 3rd, partial ends included"
    assert buckets[0]["start"] == "2026-03-02T00:00:00Z"
    assert buckets[-1]["start"] == "2026-03-03T05:00:00Z"
    totals = {b["start"]: b["total"] for b in buckets if b["total"]}
    expected = Counter(
        SPECS[i].created.strftime("%Y-%m-%dT%H:00:00Z")
        for i in INSIDE
        if SPECS[i].created <= datetime(2026, 3, 3, 5, tzinfo=UTC)
    )
    assert totals == dict(expected)
    assert sum(b["total"] for b in buckets) == found["total"]


def test_weekly_series_starts_on_mondays(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since="2026-02-27,2026-03-04", interval="week")
    buckets = found["series"]["buckets"]
    assert [(b["start"], b["total"]) for b in buckets] == [
        ("2026-02-23T00:00:00Z", 1),  # the job of Saturday the 28th
        ("2026-03-02T00:00:00Z", len(INSIDE)),
    ]


def test_series_grouped_by_cause(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since=WINDOW, interval="day", group_by="cause", state="crashed")
    for day, bucket in enumerate(found["series"]["buckets"]):
        idx = [i for i in INSIDE if SPECS[i].created.day == 2 + day and SPECS[i].state == "CRASHED"]
        expected = Counter(SPECS[i].cause for i in idx)
        assert {g["key"]["cause"]: g["total"] for g in bucket["groups"]} == expected
        assert all(g["by_state"]["CRASHED"] == g["total"] for g in bucket["groups"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"cause": "koji"}, [2, 4, 5]),
        ({"cause": "koji.build_not_found"}, [4, 5]),
        ({"cause": "koji,network"}, [2, 4, 5, 9]),
        ({"cause": "ko"}, []),
        ({"task": "rpmlint", "arch": "x86_64"}, [0, 2, 3, 12]),
        ({"state": "crashed", "blame": "third_party"}, [2, 4, 5]),
        ({"item_type": "bodhi_update"}, [4, 5, 6]),
        ({"task:like": "*check"}, [4, 5, 6, 7, 8, 9, 10]),
        ({"since": "2026-03-03"}, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]),
        ({"since": "2026-03-02T05:00:00Z,2026-03-03T02:00:00Z"}, [2, 3]),
    ],
)
def test_filters_are_the_job_searchs(
    server: LiveServer, seeded: list[str], params: dict[str, str], expected: list[int]
) -> None:
    query = {"since": WINDOW, **params}
    found = stats(server, **query)
    assert found["total"] == len(expected)
    assert found["by_state"] == by_state(expected)
    # The same parameters list the same jobs in the search.
    with server.client() as client:
        listed = client.get("/api/v1/jobs", params={**query, "limit": 100}).json()["data"]
    assert sorted(j["uuid"] for j in listed) == sorted(seeded[i] for i in expected)


def test_how_often_a_retry_helps(server: LiveServer, seeded: list[str]) -> None:
    retries = stats(server, since=WINDOW)["retries"]
    # 2 -> 3 finished, 4 -> 5 crashed again, 9 -> 10 not run yet.
    assert {k: retries[k] for k in ("retried", "helped", "pending", "share")} == {
        "retried": 3,
        "helped": 1,
        "pending": 1,
        "share": 0.5,
    }
    assert retries["by_cause"] == [
        {"retried": 1, "helped": 0, "pending": 0, "share": 0.0, "cause": "koji.build_not_found"},
        {"retried": 1, "helped": 1, "pending": 0, "share": 1.0, "cause": "koji.timeout"},
        {"retried": 1, "helped": 0, "pending": 1, "share": None, "cause": "network.dns"},
    ]
    # The retried attempt is the one the window and the filters pick.
    later = stats(server, since="2026-03-02T06:00:00Z,2026-03-04", cause="koji")["retries"]
    assert (later["retried"], later["helped"], later["share"]) == (1, 0, 0.0)


def test_uncategorized_crashes(server: LiveServer, seeded: list[str]) -> None:
    found = stats(server, since=WINDOW)["uncategorized"]
    assert found["count"] == len(UNCATEGORIZED)
    assert found["by_cause"] == [
        {"cause": "brand.new_thing", "count": 1, "in_catalogue": False},
        {"cause": "network.dns", "count": 1, "in_catalogue": True},
        {"cause": None, "count": 1, "in_catalogue": False},
    ]
    jobs = found["jobs"]
    assert [j["uuid"] for j in jobs] == [seeded[i] for i in reversed(UNCATEGORIZED)]
    assert [(j["blame"], j["cause"]) for j in jobs] == [
        ("UNKNOWN", "network.dns"),
        ("TASK", "brand.new_thing"),
        ("UNKNOWN", None),
    ]
    assert jobs[0]["href"] == f"{server.url}/api/v1/jobs/{seeded[9]}"
    assert jobs[0]["page"] == f"{server.url}/jobs/{seeded[9]}"

    one = stats(server, since=WINDOW, uncategorized_limit=1)["uncategorized"]
    assert (one["count"], [j["uuid"] for j in one["jobs"]]) == (3, [seeded[9]])
    assert stats(server, since=WINDOW, uncategorized_limit=0)["uncategorized"]["jobs"] == []


def test_the_default_window_is_the_last_30_days(server: LiveServer) -> None:
    now = datetime.now(UTC)

    def days_ago(days: int) -> float:
        return (now - timedelta(days=days) - MONDAY) / timedelta(hours=1)

    made = make(
        server,
        [
            Spec("old", "k", None, days_ago(31), "FINISHED", 1, 1),
            Spec("new", "k", None, days_ago(29), "FINISHED", 1, 1),
        ],
    )
    found = stats(server, group_by="task")
    assert len(made) == 2
    assert [g["key"]["task"] for g in found["groups"]] == ["new"]
    start = datetime.fromisoformat(found["window"]["start"])
    end = datetime.fromisoformat(found["window"]["end"])
    assert end - start == timedelta(days=30)
    assert abs(end - now) < timedelta(minutes=1)


@pytest.mark.parametrize(("period", "days"), [("7d", 7), ("24h", 1), ("2w", 14), ("30d", 30)])
def test_a_period_is_the_window_ending_now(server: LiveServer, period: str, days: int) -> None:
    """`period=7d` means what it means on the statistics page: the last 7 days."""
    now = datetime.now(UTC)

    def hours_ago(hours: float) -> float:
        return (now - timedelta(hours=hours) - MONDAY) / timedelta(hours=1)

    make(
        server,
        [
            Spec("outside", "k", None, hours_ago(days * 24 + 2), "FINISHED", 1, 1),
            Spec("inside", "k", None, hours_ago(days * 24 - 2), "FINISHED", 1, 1),
        ],
    )
    found = stats(server, group_by="task", period=period)
    assert [g["key"]["task"] for g in found["groups"]] == ["inside"]
    start = datetime.fromisoformat(found["window"]["start"])
    end = datetime.fromisoformat(found["window"]["end"])
    assert end - start == timedelta(days=days)
    with server.client() as client:
        listed = client.get("/api/v1/jobs", params={"period": period}).json()["data"]
    assert [j["task"] for j in listed] == ["inside"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "fortnight"}, "period"),
        ({"period": "7d", "since": "2026-01-01"}, "period"),
        ({"period": "100000w"}, "period"),
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "task,state,cause"}, "group_by"),
        ({"group_by": "task,task"}, "group_by"),
        ({"interval": "month"}, "interval"),
        ({"interval": "hour", "since": "2025-01-01,2026-01-01"}, "interval"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01,2026-01-01"}, "since"),
        ({"state": "DONE"}, "state"),
        ({"cause": "Koji!"}, "cause"),
        ({"uncategorized_limit": "-1"}, "uncategorized_limit"),
        ({"limit": "5"}, "limit"),
    ],
)
def test_bad_parameters_are_400(server: LiveServer, params: dict[str, str], field: str) -> None:
    with server.client() as client:
        response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.text


def test_reads_need_a_token_when_configured(make_server: StartServer) -> None:
    server: LiveServer = make_server(require_token_for_reads=True)
    with server.client() as anonymous, server.client("report") as reader:
        assert anonymous.get("/api/v1/stats").status_code == 401
        assert reader.get("/api/v1/stats").status_code == 200


@pytest.mark.parametrize("interval", ["hour", "day", "week"])
def test_a_window_at_the_end_of_time_is_answered(server: LiveServer, interval: str) -> None:
    found = stats(server, since="9999-12-31", interval=interval)
    assert found["total"] == 0
    assert found["series"]["buckets"][-1]["start"].startswith("9999-12-")
