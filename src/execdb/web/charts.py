"""Plots drawn on the server as inline SVG: no JavaScript and no charting library.

Each function returns a `<figure>` holding one `<svg role="img">` with a `<title>` and a
`<desc>` (what a screen reader says, and what the plot shows in words), followed by an HTML
legend: a legend in HTML wraps on a phone, where text inside a scaled-down SVG would shrink
to nothing. Series are told apart by colour *and* by a second cue (dash pattern, order in
the stack, a text label), never by colour alone. Every text placed in the markup is escaped.

A mark given a link (`Series.links`, `Bar.link`) is wrapped in an SVG `<a>` with an
`aria-label` saying what it counts: the search of the jobs behind it. A plot with links is
`role="group"` rather than `role="img"`, so that its links reach a screen reader and the
keyboard (an image's parts are hidden from both); its axes are then `aria-hidden`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 30
# The plot area of `columns` and `lines`, and the y of their x axis.
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_HEIGHT
FONT = 'font-size="12" font-family="system-ui, sans-serif"'
DASHES = ("", "6 3", "2 3", "10 3 2 3", "1 5", "8 6")
TEXT = "#1a1a1a"
GRID = "#d0d0d0"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str
    links: Sequence[str | None] = ()  # per value: where its mark links to, if anywhere

    def link(self, i: int) -> str | None:
        return self.links[i] if i < len(self.links) else None


def axis_top(value: float) -> float:
    """The top of a y axis with four gridlines at whole, round steps (1, 2, 5 x 10^n) that
    reaches `value`: 7 gives 8 (steps of 2), 130 gives 200 (steps of 50)."""
    if value <= 0:
        return 4
    wanted = value / 4
    power = 10.0 ** math.floor(math.log10(wanted))
    step = next(m * power for m in (1, 2, 5, 10) if wanted <= m * power)
    return 4 * max(step, 1.0)


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _id(ident: str, part: str) -> str:
    return f"{ident}-{part}"


def _open(
    ident: str, title: str, description: str, height: int = HEIGHT, *, linked: bool = False
) -> list[str]:
    role = "group" if linked else "img"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="{role}" aria-labelledby="{_id(ident, "title")} {_id(ident, "desc")}" '
        f'class="chart" id="{ident}" {FONT}>',
        f'<title id="{_id(ident, "title")}">{escape(title)}</title>',
        f'<desc id="{_id(ident, "desc")}">{escape(description)}</desc>',
    ]


def linked(mark: str, link: str | None, label: str) -> str:
    """`mark` inside an `<a>` to `link`, named `label`; `mark` alone without a link."""
    if link is None:
        return mark
    return f'<a href="{escape(link)}" aria-label="{escape(label)}">{mark}</a>'


def _hidden(parts: list[str]) -> list[str]:
    return ['<g aria-hidden="true">', *parts, "</g>"]


def _y_axis(maximum: float, unit: str) -> list[str]:
    parts = []
    for i in range(5):
        value = maximum * i / 4
        y = BASELINE - PLOT_HEIGHT * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}">'
            f"{_number(value)}</text>"
        )
    parts.append(f'<text x="4" y="14" fill="{TEXT}" font-size="12">{escape(unit)}</text>')
    return parts


def _slots(labels: Sequence[str]) -> tuple[float, list[float]]:
    """The width of each label's slot along the x axis, and the x of each slot's middle."""
    slot = PLOT_WIDTH / max(len(labels), 1)
    return slot, [LEFT + slot * (i + 0.5) for i in range(len(labels))]


def _x_axis(labels: Sequence[str], x_of: list[float]) -> list[str]:
    axis = (
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{BASELINE}" y2="{BASELINE}" '
        f'stroke="{TEXT}" stroke-width="1"/>'
    )
    # At most about eight labels, evenly spaced, so that they never overlap.
    every = max(1, math.ceil(len(labels) / 8))
    return [axis] + [
        f'<text x="{x_of[i]:.1f}" y="{BASELINE + 18:.1f}" text-anchor="middle" '
        f'fill="{TEXT}">{escape(labels[i])}</text>'
        for i in range(0, len(labels), every)
    ]


def legend(series: Sequence[Series], *, lines: bool = False) -> str:
    items = []
    for i, s in enumerate(series):
        if lines:
            dash = DASHES[i % len(DASHES)]
            swatch = (
                f'<svg class="swatch" viewBox="0 0 28 10" aria-hidden="true" width="28" '
                f'height="10"><line x1="0" x2="28" y1="5" y2="5" stroke="{s.colour}" '
                f'stroke-width="3" stroke-dasharray="{dash}"/></svg>'
            )
        else:
            # An SVG fill, not a style attribute: the pages' CSP allows no inline styles.
            swatch = (
                '<svg class="swatch filled" viewBox="0 0 16 12" aria-hidden="true" width="16" '
                f'height="12"><rect x=".5" y=".5" width="15" height="11" fill="{s.colour}" '
                'stroke="rgba(0,0,0,.3)"/></svg>'
            )
        total = _number(sum(s.values))
        items.append(f"<li>{swatch}{escape(s.name)} <span class=muted>({total})</span></li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def _figure(svg: list[str], title: str, caption: str, after: str) -> Markup:
    note = f' <span class="muted">{escape(caption)}</span>' if caption else ""
    # Every text that goes into `svg` and `after` is escaped where it is added.
    return Markup(  # noqa: S704
        f'<figure class="plot"><figcaption><strong>{escape(title)}</strong>{note}</figcaption>'
        '<div class="plot-box">' + "".join(svg) + "</svg></div>" + after + "</figure>"
    )


def columns(
    *,
    ident: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str,
    caption: str = "",
) -> Markup:
    """Columns, one per label, with the series stacked in their given order."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    maximum = axis_top(max(totals, default=0))
    slot, x_of = _slots(labels)
    bar = max(slot * 0.75, 1)
    busiest = max(range(len(labels)), key=lambda i: totals[i], default=None)
    description = f"{title}: {_number(sum(totals))} {unit} in all"
    if busiest is not None and totals[busiest]:
        description += f"; the most, {_number(totals[busiest])}, at {labels[busiest]}"
    description += ". " + "; ".join(f"{s.name}: {_number(sum(s.values))}" for s in series)
    links = any(s.links for s in series)
    svg = _open(ident, title, description, linked=links)
    svg += _hidden(_y_axis(maximum, unit)) if links else _y_axis(maximum, unit)
    for i, label in enumerate(labels):
        if not totals[i]:
            continue
        parts = ", ".join(f"{s.name} {_number(s.values[i])}" for s in series if s.values[i])
        svg.append(f"<g><title>{escape(label)}: {_number(totals[i])} ({escape(parts)})</title>")
        y = float(BASELINE)
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = PLOT_HEIGHT * value / maximum
            y -= h
            rect = (
                f'<rect x="{x_of[i] - bar / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{s.colour}" stroke="#fff" stroke-width="0.5"/>'
            )
            name = f"{s.name}, {label}: {_number(value)} {unit}"
            svg.append(linked(rect, s.link(i), name))
        svg.append("</g>")
    svg += _hidden(_x_axis(labels, x_of)) if links else _x_axis(labels, x_of)
    after = legend(series) if len(series) > 1 else ""
    return _figure(svg, title, caption, after)


def lines(
    *,
    ident: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str,
    caption: str = "",
) -> Markup:
    """One line per series over the labels; each line has its own dash pattern."""
    maximum = axis_top(max((v for s in series for v in s.values), default=0))
    _, x_of = _slots(labels)

    def y_of(value: float) -> float:
        return BASELINE - PLOT_HEIGHT * value / maximum

    description = f"{title}. " + "; ".join(
        f"{s.name}: {_number(sum(s.values))} in all, at most {_number(max(s.values, default=0))}"
        for s in series
    )
    links = any(s.links for s in series)
    svg = _open(ident, title, description, linked=links)
    svg += _hidden(_y_axis(maximum, unit)) if links else _y_axis(maximum, unit)
    for n, s in enumerate(series):
        points = " ".join(f"{x_of[i]:.1f},{y_of(v):.1f}" for i, v in enumerate(s.values))
        dash = DASHES[n % len(DASHES)]
        svg.append(
            f"<g><title>{escape(s.name)}</title>"
            f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="2.5" '
            f'stroke-dasharray="{dash}" stroke-linejoin="round"/>'
        )
        for i, v in enumerate(s.values):
            if v:
                name = f"{s.name}, {labels[i]}: {_number(v)}"
                point = (
                    f'<circle cx="{x_of[i]:.1f}" cy="{y_of(v):.1f}" r="3" fill="{s.colour}">'
                    f"<title>{escape(name)}</title></circle>"
                )
                svg.append(linked(point, s.link(i), f"{name} {unit}"))
        svg.append("</g>")
    svg += _hidden(_x_axis(labels, x_of)) if links else _x_axis(labels, x_of)
    return _figure(svg, title, caption, legend(series, lines=True))


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # what is written at the end of the bar ('12 % of 140')
    colour: str = "#0072b2"
    link: str | None = None
    link_label: str = ""  # what the link leads to, for its aria-label


def bars(*, ident: str, title: str, rows: Sequence[Bar], scale: float, caption: str = "") -> Markup:
    """Horizontal bars with their label on the left and their value written at the end.

    `scale` is the value of a full-width bar (1.0 for rates, the largest value for counts).
    """
    row_height = 26
    label_width = 190
    height = TOP + row_height * max(len(rows), 1) + 8
    plot_width = WIDTH - label_width - 110
    description = f"{title}. " + "; ".join(f"{r.label}: {r.text}" for r in rows)
    svg = _open(ident, title, description, height, linked=any(r.link for r in rows))
    for i, row in enumerate(rows):
        y = TOP + i * row_height
        width = plot_width * (row.value / scale if scale else 0)
        name = row.label if len(row.label) <= 28 else row.label[:27] + "…"
        svg.append(
            f"<g><title>{escape(row.label)}: {escape(row.text)}</title>"
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" fill="{TEXT}">'
            f"{escape(name)}</text>"
            + linked(
                f'<rect x="{label_width}" y="{y + 4}" width="{max(width, 1):.1f}" height="16" '
                f'fill="{row.colour}"/>',
                row.link,
                row.link_label or f"{row.label}: {row.text}",
            )
            + f'<text x="{label_width + width + 6:.1f}" y="{y + 16}" fill="{TEXT}">'
            f"{escape(row.text)}</text></g>"
        )
    return _figure(svg, title, caption, "")


def sparkline(
    *, ident: str, title: str, labels: Sequence[str], series: Series, unit: str
) -> Markup:
    """A row's small column plot (the dashboard's trend of a cause): no axes, its columns
    linked like those of `columns`, its counts said in its description."""
    width, height, gap = 84, 22, 2
    slot = width / max(len(labels), 1)
    top = max(series.values, default=0) or 1
    counts = ", ".join(
        f"{label} {_number(v)}" for label, v in zip(labels, series.values, strict=True)
    )
    linked_marks = bool(series.links)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" role="{"group" if linked_marks else "img"}" class="spark" '
        f'id="{ident}" aria-labelledby="{_id(ident, "title")} {_id(ident, "desc")}">',
        f'<title id="{_id(ident, "title")}">{escape(title)}</title>',
        f'<desc id="{_id(ident, "desc")}">{escape(counts)} {escape(unit)}</desc>',
        f'<line x1="0" x2="{width}" y1="{height - 0.5}" y2="{height - 0.5}" stroke="{GRID}"/>',
    ]
    for i, value in enumerate(series.values):
        if not value:
            continue
        h = max((height - 2) * value / top, 2)
        rect = (
            f'<rect x="{i * slot + gap / 2:.1f}" y="{height - 1 - h:.1f}" '
            f'width="{slot - gap:.1f}" height="{h:.1f}" fill="{series.colour}">'
            f"<title>{escape(labels[i])}: {_number(value)}</title></rect>"
        )
        name = f"{series.name}, {labels[i]}: {_number(value)} {unit}"
        svg.append(linked(rect, series.link(i), name))
    svg.append("</svg>")
    return Markup("".join(svg))  # noqa: S704 (every text in it is escaped where it is added)
