"""PostgreSQL's calls on the event loop (execdb.loopcalls): more concurrent requests than
connections all get their turn, and a process never holds more connections than it is given.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from execdb.db import POSTGRES_READERS
from tests.conftest import StartServer
from tests.helpers import INTO, create_job
from tests.pgcluster import PostgresCluster

CLIENTS = 12
LIVES = 8
CONNECTIONS = 2


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_more_clients_than_connections_all_get_their_turn(
    backend: str, pg_cluster: PostgresCluster, make_server: StartServer
) -> None:
    server = make_server(db_pool_size=CONNECTIONS)
    name = server.settings.effective_database_url.rsplit("/", 1)[1]

    def lives() -> list[tuple[str, list[int]]]:
        done = []
        with server.client("both") as client:
            for _ in range(LIVES):
                job = create_job(client)
                statuses = [
                    client.patch(f"/api/v1/jobs/{job['uuid']}", json=INTO[state]).status_code
                    for state in ("RUNNING", "FINISHED")
                ]
                done.append((job["uuid"], statuses))
        return done

    walking = threading.Event()
    held: list[int] = []

    def count_connections() -> None:
        with pg_cluster.connect() as admin:
            admin.autocommit = True
            while walking.is_set():
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid()",
                    (name,),
                ).fetchone()
                assert row is not None
                held.append(row[0])
                walking.wait(0.02)

    walking.set()
    counter = threading.Thread(target=count_connections)
    counter.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            walked = [life for done in pool.map(lambda _: lives(), range(CLIENTS)) for life in done]
    finally:
        walking.clear()
        counter.join()

    assert len(walked) == CLIENTS * LIVES
    assert {status for _, statuses in walked for status in statuses} == {200}
    with server.client("admin") as client:
        for uuid, _ in walked[::LIVES]:
            job = client.get(f"/api/v1/jobs/{uuid}").json()
            assert job["state"] == "FINISHED"
            events = client.get(f"/api/v1/jobs/{uuid}/events").json()
            assert [e["to_state"] for e in events["data"]] == ["SCHEDULED", "RUNNING", "FINISHED"]
    # The calls' connections, the readers' (none used here) and the few borrowed ones.
    assert len(held) >= 5
    assert max(held) <= CONNECTIONS + POSTGRES_READERS + 2, f"up to {max(held)} connections"
