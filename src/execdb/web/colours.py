"""One colour per cause, the same on every page and plot.

A cause's colour is a fixed palette indexed by a stable hash of its code (CRC-32: the same
in every process and every release), so `koji.timeout` is drawn alike on the dashboard and
on /stats, whatever else is shown beside it. The palette is Paul Tol's "muted" scheme less
its sand (too close to THIRD_PARTY's orange): told apart by most people with a colour vision
deficiency, and none of its colours is one of the blame colours (`pages.BLAME_COLOURS`,
Okabe & Ito's). With more causes than colours two causes may share one: the text always
names the cause, and a stacked column lists its parts in its tooltip.
"""

from __future__ import annotations

import zlib

CAUSE_PALETTE = (
    "#332288",  # indigo
    "#88ccee",  # cyan
    "#44aa99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#cc6677",  # rose
    "#882255",  # wine
    "#aa4499",  # purple
)
NO_CAUSE = "#4d4d4d"  # crashes without a cause: a dark grey, darker than UNKNOWN's
OTHER = "#c8c8c8"  # the causes a plot does not name, together


def cause_colour(cause: str | None) -> str:
    if cause is None:
        return NO_CAUSE
    return CAUSE_PALETTE[zlib.crc32(cause.encode()) % len(CAUSE_PALETTE)]
