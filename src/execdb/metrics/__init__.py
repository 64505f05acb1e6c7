"""Prometheus metrics: what `GET /metrics` answers (docs/deployment.md lists them).

- `instruments`: what each process counts (reports, crashes, classifications, request
  durations), in prometheus-client's multiprocess mode when there are several processes;
- `figures`: what is read from the database at scrape time (jobs by state, the outbox's
  backlog, the worker's last round) and the exposition of both;
- `models`: the table of the workers' last rounds.
"""

from execdb.metrics.figures import DatabaseFigures, Figures, exposition, round_finished
from execdb.metrics.instruments import (
    Metrics,
    MetricsError,
    RequestTimer,
    single_process_warning,
)

__all__ = [
    "DatabaseFigures",
    "Figures",
    "Metrics",
    "MetricsError",
    "RequestTimer",
    "exposition",
    "round_finished",
    "single_process_warning",
]
