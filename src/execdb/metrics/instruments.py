"""What each process counts itself: reports, crashes, classifications and request times.

These live in the process (prometheus-client counters and histograms). With several server
processes, prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, read when
prometheus-client is first imported) keeps each process's values in a file of that directory
and a scrape adds them all up, whichever process answers it (docs/deployment.md).

Counting is an increment after the commit, never a query: the report path pays a few
microseconds for it (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from execdb.causes.catalogue import Catalogue
from execdb.vocabulary import Blame, Outcome, State

# Who gave a crash its blame and cause: the reporter (a specific cause), the rules (from the
# log), a person (a reclassification), or nobody.
SOURCES = ("reporter", "rules", "person", "none")
OTHER = "other"  # a cause outside the catalogue: its family is not a bounded label value
NO_CAUSE = "none"
# From a millisecond (a report on SQLite) to ten seconds (the statistics of a year).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # a request no route answers (a 404): never its raw path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsError(ValueError):
    """The metrics cannot be kept as configured; the message says why."""


def multiprocess_dir() -> str | None:
    """prometheus-client's directory for several processes' values, if one is set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def single_process_warning(processes: int) -> str | None:
    """What to tell someone starting several server processes without a shared directory."""
    if processes > 1 and multiprocess_dir() is None:
        return (
            f"{processes} server processes without PROMETHEUS_MULTIPROC_DIR: each scrape of "
            "/metrics shows only the counters of the process that answers it (docs/deployment.md)"
        )
    return None


class Metrics:
    """The counters and histograms of one application (or worker), on a registry of its own
    so that several applications in one process (the tests) keep their figures apart."""

    def __init__(self, catalogue: Catalogue) -> None:
        directory = multiprocess_dir()
        if directory is not None and not os.path.isdir(directory):
            raise MetricsError(
                f"PROMETHEUS_MULTIPROC_DIR={directory} is not a directory: make it (empty) "
                "before the server processes start"
            )
        # A `_created` series per counter is what multiprocess mode leaves out anyway: the
        # same series whether there are one or several processes.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.families = frozenset(cause.family for cause in catalogue.values())
        self._catalogue = catalogue
        self.reports = Counter(
            "execdb_reports",
            "Reports about jobs (state switches), by the state reported and what became of it.",
            ["state", "outcome"],
            registry=self.registry,
        )
        self.crashes = Counter(
            "execdb_crashes",
            "Jobs that became CRASHED, by blame and cause family ('other': a cause outside "
            "the catalogue; 'none': no cause).",
            ["blame", "cause_family"],
            registry=self.registry,
        )
        self.classifications = Counter(
            "execdb_crash_classifications",
            "Crashes by who gave them their blame and cause: reporter, rules, none; person "
            "counts reclassifications by people.",
            ["source"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "execdb_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status code.",
            ["method", "route", "code"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._zero()

    def _zero(self) -> None:
        # Every series exists from the start, so that rate() sees the first increment; the
        # children are kept, since labels() (a lock and a tuple) cost more than inc() itself.
        self._reports = {
            (str(state), str(outcome)): self.reports.labels(state.value, outcome.value)
            for state in State
            for outcome in Outcome
        }
        self._crashes = {
            (str(blame), family): self.crashes.labels(blame.value, family)
            for blame in Blame
            for family in (*sorted(self.families), OTHER, NO_CAUSE)
        }
        self._sources = {source: self.classifications.labels(source) for source in SOURCES}

    def family(self, cause: str | None) -> str:
        if cause is None:
            return NO_CAUSE
        known = self._catalogue.get(cause)
        return known.family if known is not None else OTHER

    def reported(self, state: str, outcome: Outcome, job: Mapping[str, Any] | None) -> None:
        """Count one report once it is committed; `job` is the job as it then is."""
        self._reports[str(state), str(outcome)].inc()
        if (
            job is not None
            and outcome in (Outcome.ACCEPTED, Outcome.REPLACED)
            and job["state"] == State.CRASHED
        ):
            self.crashed(job)

    def crashed(self, job: Mapping[str, Any]) -> None:
        blame = job["blame"] or Blame.UNKNOWN
        self._crashes[str(blame), self.family(job["cause"])].inc()
        self.classified(job["classified_by"] or "none")

    def classified(self, source: str) -> None:
        self._sources.get(source, self._sources["none"]).inc()


class RequestTimer:
    """ASGI middleware observing each HTTP request's duration under its route's template
    (`/api/v1/jobs/{job_uuid}`, never the raw path, whose ids are unbounded)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.requests = metrics.requests
        self._children: dict[tuple[str, str, int], MetricWrapperBase] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._observe(scope, status, time.perf_counter() - began)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else OTHER
        key = (method, template, status)
        child = self._children.get(key)
        if child is None:
            # labels() takes a lock and builds a tuple: kept per key, the hot path skips it.
            child = self._children[key] = self.requests.labels(*key[:2], str(status))
        child.observe(seconds)  # type: ignore[attr-defined]
