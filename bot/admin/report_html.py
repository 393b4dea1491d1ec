"""`python -m bot stats --html FILE`: the figures of `/stats` as one self-contained HTML page,
for people who would rather look than read.

Everything is inline (the chart is SVG drawn here, the style a `<style>` element, no script)
and the page's Content-Security-Policy allows nothing to be fetched, so it opens the same
from a mail attachment, a file share or a machine without network. Numbers in it come from
`AdminService.stats` only, the one home of these figures.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from html import escape

from bot.admin.reports import amount, place_label, rate, spend_line
from bot.admin.service import PUMPING_CONVERSION, PUMPING_MIN_STARTS, Counts, Stats

# The chart's drawing area, in SVG user units (it scales with the page).
WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 16, 40
STARTS_COLOUR, VERIFIED_COLOUR, CONVERSION_COLOUR = "#8da0cb", "#66c2a5", "#e5704b"
# At most this many day labels under the chart; the others are left out so they never overlap.
DAY_LABELS = 12

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 2rem auto; max-width: 800px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
.period { color: #666; margin-top: .25rem; }
.totals { display: flex; gap: 2rem; margin: 1rem 0; }
.totals div { font-size: .85rem; color: #555; }
.totals b { display: block; font-size: 1.6rem; color: #222; }
svg { width: 100%; height: auto; }
svg text { font-size: 11px; fill: #555; }
.grid { stroke: #e4e4e4; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: right; padding: .3rem .6rem; border-bottom: 1px solid #e4e4e4; }
th:first-child, td:first-child { text-align: left; }
tr.pumping td { background: #fdecea; }
.flag { color: #b3261e; font-weight: 600; }
.none { color: #777; }
.legend span { display: inline-block; margin-right: 1.2rem; font-size: .85rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
            vertical-align: -1px; }
"""


def stats_html(stats: Stats, *, generated_at: datetime) -> str:
    """The whole page."""
    total = stats.total
    title = f"Logins: the last {stats.days} day(s)"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            # Nothing may be fetched: the page is complete as it is.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="period">From {stats.since:%Y-%m-%d} (UTC); made '
            f"{generated_at:%Y-%m-%d %H:%M} UTC.</p>",
            '<div class="totals">',
            f"<div><b>{total.starts}</b>started</div>",
            f"<div><b>{total.verified}</b>verified logins</div>",
            f"<div><b>{rate(total.conversion)}</b>conversion</div>",
            "</div>",
            f'<p class="spend">{escape(spend_line(stats))}.</p>',
            "<h2>Per day</h2>",
            _legend(),
            _chart(_days(stats)),
            _day_table(stats, _days(stats)),
            "<h2>Per region</h2>",
            f"<p>A conversion below {PUMPING_CONVERSION:.0%} once a region has "
            f"{PUMPING_MIN_STARTS} or more starts is flagged: codes that are mostly never "
            "used are the mark of SMS pumping.</p>",
            _region_table(stats),
            "<h2>Failures, by kind</h2>",
            _counts_table("failures", "Kind", stats.failures),
            "<h2>Limits tripped, by rule</h2>",
            _counts_table("limits", "Rule", stats.limits),
            *_web_logins(stats),
            "</body>",
            "</html>",
            "",
        ]
    )


def _days(stats: Stats) -> list[tuple[str, Counts]]:
    """Every day of the period, oldest first, the quiet ones at zero."""
    days = [(stats.since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(stats.days)]
    return [(day, stats.per_day.get(day, Counts())) for day in days]


def _legend() -> str:
    items = [
        (STARTS_COLOUR, "started"),
        (VERIFIED_COLOUR, "verified"),
        (CONVERSION_COLOUR, "conversion (right axis)"),
    ]
    spans = "".join(
        f'<span><i style="background:{colour}"></i>{escape(label)}</span>'
        for colour, label in items
    )
    return f'<div class="legend">{spans}</div>'


def _chart(days: list[tuple[str, Counts]]) -> str:
    """Bars of starts and verified logins per day, and the conversion as a line."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_ceiling(max((c.starts for _, c in days), default=0))
    group = plot_w / len(days)
    bar = max(group * 0.36, 0.5)
    bottom = TOP + plot_h

    def y_count(value: int) -> float:
        return bottom - plot_h * value / top

    parts = [
        f'<svg id="per-day" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Started, verified and conversion per day">'
    ]
    for step in range(5):  # gridlines: counts on the left, conversion on the right
        y = y_count(top * step // 4)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{top * step // 4}</text>'
            f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{step * 25}%</text>'
        )
    label_every = math.ceil(len(days) / DAY_LABELS)
    points: list[str] = []
    for i, (day, counts) in enumerate(days):
        x = LEFT + group * i + group / 2
        for kind, value, colour, left in (
            ("starts", counts.starts, STARTS_COLOUR, x - bar),
            ("verified", counts.verified, VERIFIED_COLOUR, x),
        ):
            y = y_count(value)
            parts.append(
                f'<rect class="{kind}" data-day="{day}" data-value="{value}" '
                f'x="{left:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{bottom - y:.1f}" '
                f'fill="{colour}"><title>{day}: {value} {_label(kind)}</title></rect>'
            )
        if counts.conversion is not None:
            y = bottom - plot_h * counts.conversion
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="conversion" data-day="{day}" '
                f'data-value="{counts.conversion:.4f}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                f'fill="{CONVERSION_COLOUR}"><title>{day}: conversion '
                f"{rate(counts.conversion)}</title></circle>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{day[5:]}</text>'
            )
    if len(points) > 1:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" '
            f'stroke="{CONVERSION_COLOUR}" stroke-width="2"/>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _label(kind: str) -> str:
    return "started" if kind == "starts" else "verified"


def _nice_ceiling(value: int) -> int:
    """The chart's top: four gridlines at round whole numbers (such as 12, 24, 36, 48 for
    47), the smallest at or above `value`."""
    scale = 1
    while True:
        for tenths in (10, 12, 15, 20, 25, 30, 40, 50, 60, 80):  # 1, 1.2, 1.5, 2, ... 8
            quarter, rest = divmod(tenths * scale, 10)
            if not rest and 4 * quarter >= value:
                return 4 * quarter
        scale *= 10


def _day_table(stats: Stats, days: list[tuple[str, Counts]]) -> str:
    rows = "".join(
        f"<tr><td>{day}</td><td>{c.starts}</td><td>{c.verified}</td>"
        f"<td>{rate(c.conversion)}</td>{_spend_cell(stats, c)}</tr>"
        for day, c in reversed(days)
        if c.starts or c.verified
    )
    if not rows:
        rows = '<tr><td class="none" colspan="5">Nothing in this period.</td></tr>'
    return (
        '<details><summary>The figures</summary><table id="days"><thead><tr><th>Day</th>'
        f"<th>Started</th><th>Verified</th><th>Conversion</th>{_spend_heading(stats)}</tr>"
        f"</thead><tbody>{rows}</tbody></table></details>"
    )


def _region_table(stats: Stats) -> str:
    suspicious = set(stats.suspicious_regions)
    rows = []
    for key, c in stats.per_region.items():
        flagged = key in suspicious
        row_class = ' class="pumping"' if flagged else ""
        flag = '<span class="flag">Possible SMS pumping</span>' if flagged else ""
        rows.append(
            f"<tr{row_class}><td>{escape(place_label(key))}</td><td>{c.starts}</td>"
            f"<td>{c.verified}</td><td>{rate(c.conversion)}</td>{_spend_cell(stats, c)}"
            f"<td>{flag}</td></tr>"
        )
    body = "".join(rows) or '<tr><td class="none" colspan="6">Nothing in this period.</td></tr>'
    return (
        '<table id="regions"><thead><tr><th>Region</th><th>Started</th>'
        f"<th>Verified</th><th>Conversion</th>{_spend_heading(stats)}<th>Flag</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _spend_heading(stats: Stats) -> str:
    """The spend column's heading, once any price is set (no column without prices)."""
    if not stats.prices.known:
        return ""
    return f"<th>Spend ({escape(stats.prices.currency)})</th>"


def _spend_cell(stats: Stats, counts: Counts) -> str:
    if not stats.prices.known:
        return ""
    return f"<td>{amount(stats.spend(counts)) or 'unknown'}</td>"


def _web_logins(stats: Stats) -> list[str]:
    """Logins approved for websites, by website; nothing where the web login is not used."""
    if not stats.web_logins:
        return []
    counts = {f"{name} ({client})": n for client, (name, n) in stats.web_logins.items()}
    return ["<h2>Web logins, by website</h2>", _counts_table("web-logins", "Website", counts)]


def _counts_table(name: str, heading: str, counts: dict[str, int]) -> str:
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{count}</td></tr>" for key, count in counts.items()
    )
    body = rows or '<tr><td class="none" colspan="2">None.</td></tr>'
    return (
        f'<table id="{name}"><thead><tr><th>{heading}</th><th>Count</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
