"""A stand-in for libtaskotron's runtask: what it does depends on the item's name."""

import argparse
import json
import time

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
elif args.item.startswith("nostatus"):
    raise SystemExit(1)
else:  # "hang": never ends; Buildbot's timeout stops it
    time.sleep(600)
    raise SystemExit(2)
with open(args.status_file, "w") as f:
    json.dump(doc, f)
