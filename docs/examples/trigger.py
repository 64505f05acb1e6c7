"""A trigger's side of ExecDB: from a bus message to jobs, and their UUIDs to the executor.

Run it against a server: EXECDB_URL=http://127.0.0.1:5003 EXECDB_TOKEN=... python trigger.py
"""

from __future__ import annotations

from typing import Any

from execdb.client import Client

# Which tasks run for which kind of item: the trigger's own rules.
TASKS = {"koji_build": ["rpmlint", "rpmdeplint"]}
ARCHES = ["x86_64", "aarch64"]


def jobs_for_message(client: Client, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Create (or find again, on redelivery) one job per task and arch for a finished build.

    `msg_id` makes a redelivered message harmless: the same message, task, item and arch give
    the job made the first time. `trigger_data` keeps what is needed to schedule it again.
    """
    body = message["body"]
    if message["topic"].endswith("buildsys.build.state.change") and body["new"] == 1:
        item = f"{body['name']}-{body['version']}-{body['release']}"
        trigger_data = {"topic": message["topic"], "build_id": body["build_id"], "nvr": item}
        return [
            client.create_job(
                task=task,
                item=item,
                item_type="koji_build",
                arch=arch,
                msg_id=message["id"],
                trigger_data=trigger_data,
            )
            for task in TASKS["koji_build"]
            for arch in ARCHES
        ]
    return []


def schedule(job: dict[str, Any]) -> dict[str, str]:
    """The build properties the executor needs (here: for a Buildbot force scheduler)."""
    return {
        "taskname": job["task"],
        "item": job["item"],
        "item_type": job["item_type"],
        "arch": job["arch"] or "noarch",
        "uuid": job["uuid"],
    }


MESSAGE = {
    "id": "2026-5f3c1e6a-9d1b-4c6e-8f3a-0c1d2e3f4a5b",
    "topic": "org.fedoraproject.prod.buildsys.build.state.change",
    "body": {"name": "xchat", "version": "2.8.8", "release": "21.fc40", "build_id": 1234, "new": 1},
}

if __name__ == "__main__":
    with Client() as execdb:
        for job in jobs_for_message(execdb, MESSAGE):
            print(schedule(job))
