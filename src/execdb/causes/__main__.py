"""Print docs/causes.md for the shipped catalogue."""

import sys

from execdb.causes.catalogue import load_catalogue, render_markdown

sys.stdout.write(render_markdown(load_catalogue()))
