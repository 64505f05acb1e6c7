"""Jobs of every kind, spread over the last days, for the tests of the web pages.

They are made through the job service with explicit times (the API always stamps `now`), so
that the pages have history to plot: crashes of every blame, causes in and out of the
catalogue, a job crashed without a cause, a chain of attempts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import update

from execdb.jobs.models import Job
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Actor

TRIGGER = Actor("test-trigger")
EXECUTOR = Actor("test-executor")

# (task, hours ago created, minutes queued, minutes run, outcome)
# outcome: FINISHED, RUNNING, SCHEDULED, CANCELLED or (blame, cause, details)
CRASH_KOJI = ("THIRD_PARTY", "koji.timeout", "koji did not answer within 300 s")
CRASH_TASK = (
    "TASK",
    "task.exception",
    "Traceback (most recent call last):\n  ...\nKeyError: 'nvr'",
)
CRASH_OOM = ("TASKOTRON", "resources.oom", "killed by the OOM killer")
CRASH_ODD = ("UNKNOWN", "gremlins.in_the_machine", "nobody knows")
CRASH_BARE = (None, None, "the executor vanished")
PLAN: list[tuple[str, float, float, float, Any]] = [
    ("rpmlint", 0.5, 1, 0, "RUNNING"),
    ("rpmlint", 0.2, 0, 0, "SCHEDULED"),
    ("depcheck", 0.1, 0, 0, "SCHEDULED"),
    ("rpmlint", 2, 1, 3, "FINISHED"),
    ("rpmlint", 3, 2, 4, CRASH_KOJI),
    ("depcheck", 5, 0.5, 12, CRASH_TASK),
    ("depcheck", 8, 3, 30, "FINISHED"),
    ("abicheck", 20, 4, 8, CRASH_ODD),
    ("abicheck", 22, 1, 2, CRASH_BARE),
    ("rpmlint", 30, 1, 3, "FINISHED"),
    ("rpmlint", 50, 2, 3, CRASH_KOJI),
    ("depcheck", 70, 10, 25, CRASH_OOM),
    ("abicheck", 100, 0.2, 9, "FINISHED"),
    ("rpmlint", 120, 0, 0, "CANCELLED"),
    ("depcheck", 150, 6, 40, "FINISHED"),
    ("rpmlint", 200, 1, 2, CRASH_KOJI),
    ("abicheck", 400, 2, 5, "FINISHED"),
]


@dataclass
class Seeded:
    now: datetime
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def first(self, **match: Any) -> dict[str, Any]:
        return next(j for j in self.jobs if all(j[k] == v for k, v in match.items()))

    @property
    def chain(self) -> list[UUID]:
        """The three attempts of one job, first to last."""
        return [j["uuid"] for j in self.jobs if j["item"] == "retried-1.0-1.fc41"]


def seed(services: Services, now: datetime) -> Seeded:
    seeded = Seeded(now)
    for n, (task, hours, queued, ran, outcome) in enumerate(PLAN):
        created = now - timedelta(hours=hours)
        job = _make(services, task, f"pkg{n}-1.0-1.fc41", created, queued, ran, outcome)
        seeded.jobs.append(job)
    # One job tried three times: crashed on koji twice, then finished.
    chain = []
    for attempt, outcome in enumerate((CRASH_KOJI, CRASH_KOJI, "FINISHED"), start=1):
        created = now - timedelta(hours=12 - attempt)
        job = _make(services, "rpmlint", "retried-1.0-1.fc41", created, 1, 2, outcome)
        chain.append(job)
    with services.db.write() as conn:
        for attempt, (earlier, later) in enumerate(itertools.pairwise(chain), start=2):
            conn.execute(
                update(Job).where(Job.uuid == earlier["uuid"]).values(rescheduled_as=later["uuid"])
            )
            conn.execute(
                update(Job)
                .where(Job.uuid == later["uuid"])
                .values(rescheduled_from=earlier["uuid"], attempt=attempt)
            )
    seeded.jobs.extend(services.jobs.get(j["uuid"]) for j in chain)
    seeded.jobs = [dict(services.jobs.get(j["uuid"])) for j in seeded.jobs]
    return seeded


def _make(
    services: Services,
    task: str,
    item: str,
    created: datetime,
    queued: float,
    ran: float,
    outcome: Any,
) -> dict[str, Any]:
    new = JobCreate(task=task, item=item, item_type="koji_build", arch="x86_64")
    job, _ = services.jobs.create(new, TRIGGER, created)
    uuid = job["uuid"]
    if outcome == "SCHEDULED":
        return dict(job)
    if outcome == "CANCELLED":
        report = JobReport(state="CANCELLED", details="superseded by a newer build")
        return dict(services.jobs.report(uuid, report, TRIGGER, created).job)
    started = created + timedelta(minutes=queued)
    executor = {"name": "buildbot", "build": 40, "url": f"https://buildbot.example.org/b/{uuid}"}
    running = JobReport(state="RUNNING", executor=executor)
    done = services.jobs.report(uuid, running, EXECUTOR, started)
    if outcome == "RUNNING":
        return dict(done.job)
    ended = started + timedelta(minutes=ran)
    if outcome == "FINISHED":
        report = JobReport(state="FINISHED")
    else:
        blame, cause, details = outcome
        report = JobReport(state="CRASHED", blame=blame, cause=cause, details=details)
    return dict(services.jobs.report(uuid, report, EXECUTOR, ended).job)
