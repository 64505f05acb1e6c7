"""Print docs/rules.md for the shipped rules."""

import sys

from execdb.causes.catalogue import load_catalogue
from execdb.classify.rules import load_rules, render_markdown

sys.stdout.write(render_markdown(load_rules(load_catalogue())))
