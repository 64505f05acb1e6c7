"""A worker killed (SIGKILL) in the middle of a delivery loses nothing.

The receiver takes the POST and does not answer, so the worker is mid-delivery when it dies;
a new worker must make the delivery again once the dead worker's lease has run out (not
before), under the same X-ExecDB-Delivery id, so that the receiver can tell it is the same.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from execdb.automation.models import Status
from execdb.db import utcnow
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.vocabulary import Blame, State
from tests.conftest import Databases
from tests.functional.test_workers import TRIGGER, WorkerProcess, configure, wait_until
from tests.functional.test_workers import workers as workers  # the fixture
from tests.receivers import WebhookReceiver

CONFIG = """\
[notify]
admins = ["webhook:ops"]

[[notify.routes]]
blame = ["TASK"]
to = ["admins"]

[notify.webhooks.ops]
url = "{url}"

[delivery]
lease = "3s"
timeout = "2s"
"""


def test_a_delivery_cut_short_by_sigkill_is_made_again_with_the_same_id(
    backend: str,
    databases: Databases,
    tmp_path: Path,
    workers: Callable[[str, Path, str], WorkerProcess],
) -> None:
    url = databases.url(backend)
    with WebhookReceiver(hang=threading.Event()) as hooks:
        assert hooks.hang is not None
        config, services = configure(tmp_path, url, CONFIG.format(url=hooks.url))
        new = JobCreate(task="rpmlint", item="xchat-2.8.8-21.fc40", item_type="koji_build")
        job, _ = services.jobs.create(new, TRIGGER, utcnow())
        crash = JobReport(state=State.CRASHED, blame=Blame.TASK, cause="task.exception")
        services.jobs.report(job["uuid"], crash, TRIGGER, utcnow())

        first = workers(url, config, "worker-killed")
        hooks.wait_for(1)
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(timeout=10) == -signal.SIGKILL
        [taken] = services.outbox.for_job(job["uuid"])
        assert (taken["status"], taken["attempts"]) == (Status.PENDING, 1)
        assert taken["leased_by"].split(":")[-2] == str(first.process.pid)
        lease_ends = taken["leased_until"]
        assert lease_ends is not None
        assert lease_ends > utcnow()

        hooks.hang.set()  # the receiver answers again, at once
        second = workers(url, config, "worker-after")
        hooks.wait_for(2)
        made_again_at = utcnow()
        wait_until(
            lambda: services.outbox.for_job(job["uuid"])[0]["status"] == Status.DELIVERED,
            seconds=10,
            what="the delivery was not recorded as delivered",
        )
        time.sleep(0.5)  # time for a third POST, had there been one
        assert second.stop() == 0, second.output

    [done] = services.outbox.for_job(job["uuid"])
    services.db.close()
    assert made_again_at >= lease_ends  # not while the dead worker's lease held
    assert len(hooks.received) == 2
    again, before = hooks.received[1], hooks.received[0]
    assert again.headers["x-execdb-delivery"] == before.headers["x-execdb-delivery"]
    assert again.headers["x-execdb-delivery"] == str(done["uuid"])
    assert again.body == before.body
    assert again.json()["job"]["uuid"] == str(job["uuid"])
    assert (done["status"], done["attempts"], done["last_error"]) == (Status.DELIVERED, 2, None)
    assert done["leased_by"].split(":")[-2] == str(second.process.pid)
    assert done["delivered_at"] is not None
