"""A stand-in for libtaskotron's runtask: what it does depends on the item's name."""

import argparse
import json
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--item", required=True)
parser.add_argument("--status-file", required=True)
args = parser.parse_args()

if args.item.startswith("ok"):
    doc = {"version": 1, "status": "OK"}
elif args.item.startswith("fault"):
    doc = {
        "version": 1,
        "status": "FAULT",
        "blame": "THIRD_PARTY",
        "cause": "koji.timeout",
        "details": "koji did not answer",
    }
elif args.item.startswith("flaky"):
    # Koji times out once: the first run leaves a marker in the build's working directory,
    # which the builder's next build on this worker shares, and the next run succeeds.
    marker = Path(f"{args.item}.failed-once")
    if marker.exists():
        doc = {"version": 1, "status": "OK"}
    else:
        marker.touch()
        doc = {
            "version": 1,
            "status": "FAULT",
            "blame": "THIRD_PARTY",
            "cause": "koji.timeout",
            "details": "koji did not answer (this time)",
        }
elif args.item.startswith("nostatus"):
    raise SystemExit(1)
elif args.item.startswith("kojidies"):
    # Dies of a Koji timeout before it writes a status file: only its output says why.
    print("[libtaskotron:runner.py:98] 2026-12-02 12:00:01 INFO    fetching the build", flush=True)
    print(
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.12/site-packages/libtaskotron/koji_utils.py", line 101, in '
        "get_build\n"
        "    return self.session.getBuild(nvr)\n"
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
        "port=443): Read timed out. (read timeout=43200)",
        flush=True,
    )
    raise SystemExit(1)
else:  # "hang": never ends; Buildbot's timeout stops it
    time.sleep(600)
    raise SystemExit(2)
with open(args.status_file, "w") as f:
    json.dump(doc, f)
