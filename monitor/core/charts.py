"""Small inline SVG charts for the report, the landscape and the study page. Pure, no
dependencies.

Hand-drawn on purpose: two chart shapes (horizontal bars, columns over time) do not
justify a plotting library and its fonts, and inline SVG prints and scales cleanly.
Every label is XML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from xml.sax.saxutils import escape

from monitor.core.news import registry_day

PALETTE = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#65a30d", "#db2777")

# Each status its own colour, with the meaning people expect (greens: open to patients;
# blues: closed to new patients, still running or done; amber: paused; reds: stopped;
# grey: unknown). The legend always names the status beside its colour.
STATUS_COLORS = {
    "Recruiting": "#15803d",
    "Enrolling by invitation": "#0d9488",
    "Not yet recruiting": "#86efac",
    "Active, not recruiting": "#3b82f6",
    "Completed": "#1e3a8a",
    "Suspended": "#f59e0b",
    "Terminated": "#dc2626",
    "Withdrawn": "#7f1d1d",
    "Unknown status": "#9ca3af",
}
OTHER_STATUS = "#a855f7"


def _svg(width: int, height: int, font_size: int, title: str) -> list[str]:
    """An SVG that scales down to its box (a phone) and never wider than drawn; drawn
    small enough that its text stays readable (11 px or more) at 390 px."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'style="max-width:{width}px;height:auto" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{font_size}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="{font_size + 1}">{escape(title)}</text>',
    ]


def hbar(title: str, items: Sequence[tuple[str, int]], *, width: int = 420, color: str = PALETTE[0]) -> str:
    """Horizontal bars, one per (label, count), largest first as given."""
    if not items:
        return ""
    row, label_w, top = 22, 180, 28
    height = top + row * len(items) + 6
    peak = max(n for _, n in items) or 1
    bar_w = width - label_w - 40
    parts = _svg(width, height, 13, title)
    for i, (label, n) in enumerate(items):
        y = top + i * row
        w = max(1, round(bar_w * n / peak))
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts += [
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(shown)}</text>',
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="15" fill="{color}" rx="2"/>',
            f'<text x="{label_w + w + 4}" y="{y + 14}">{n}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def columns(
    title: str, items: Sequence[tuple[str, int]], *, width: int = 420, color: str = PALETTE[1]
) -> str:
    """Vertical columns over ordered categories (years, quarters); with many, every
    other label is shown so none overlap."""
    if not items:
        return ""
    top, bottom, left = 30, 24, 8
    height = 190
    plot_h = height - top - bottom
    slot = (width - left) / len(items)
    peak = max(n for _, n in items) or 1
    every = max(1, -(-len(items) * 40 // width))  # a label needs about 40 units
    parts = _svg(width, height, 13, title)
    for i, (label, n) in enumerate(items):
        h = round(plot_h * n / peak)
        x = left + i * slot
        w = max(2.0, slot * 0.7)
        parts += [
            f'<rect x="{x:.1f}" y="{top + plot_h - h}" width="{w:.1f}" height="{h}" fill="{color}" rx="2"/>',
            f'<text x="{x + w / 2:.1f}" y="{top + plot_h - h - 3}" text-anchor="middle">{n or ""}</text>',
            f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>'
            if i % every == 0 or i == len(items) - 1
            else "",
        ]
    parts.append("</svg>")
    return "".join(parts)


def stacked(
    title: str, items: Sequence[tuple[str, int]], *, width: int = 420, colors: Sequence[str] | None = None
) -> str:
    """One 100% bar split by category, with a legend naming each colour: a status mix at
    a glance. `colors` gives each item its own (default: the palette in turn)."""
    total = sum(n for _, n in items)
    if not total:
        return ""
    fills = list(colors) if colors else [PALETTE[i % len(PALETTE)] for i in range(len(items))]
    height = 50 + 20 * ((len(items) + 1) // 2)
    parts = _svg(width, height, 13, title)
    x = 0.0
    for (_, n), fill in zip(items, fills, strict=True):
        w = width * n / total
        parts.append(f'<rect x="{x:.1f}" y="24" width="{w:.1f}" height="16" fill="{fill}"/>')
        x += w
    entries = [(f"{label} ({n})", fill) for (label, n), fill in zip(items, fills, strict=True)]
    parts += _legend(entries, width=width, top=60, columns=2, row=20)
    parts.append("</svg>")
    return "".join(parts)


def _legend(entries: Sequence[tuple[str, str]], *, width: int, top: int, columns: int, row: int) -> list[str]:
    """A legend naming each colour, `columns` to a row: (words, fill) each."""
    out: list[str] = []
    for i, (words, fill) in enumerate(entries):
        lx, ly = (i % columns) * (width / columns), top + (i // columns) * row
        out += [
            f'<rect x="{lx:.1f}" y="{ly - 11}" width="12" height="12" fill="{fill}" '
            'stroke="#475569" stroke-width="0.5"/>',
            f'<text x="{lx + 16:.1f}" y="{ly}">{escape(words)}</text>',
        ]
    return out


def timeline_bar(
    periods: Sequence[tuple[str, str, str | None]],
    *,
    today: str,
    marks: Sequence[tuple[str, str]] = (),
    width: int = 640,
) -> str:
    """A study's life as one bar: each status period (label, first day, last day or None
    for "still") in its status colour, from registration to the later of today and the
    planned completion; `marks` are dated ticks ("Primary completion", "2027-03"). Dates
    are the registry's ("2024", "2024-03" or "2024-03-15"), read as their first day."""
    now = registry_day(today)
    spans = [(label, registry_day(a), registry_day(b) or now) for label, a, b in periods]
    spans = [(label, a, b) for label, a, b in spans if a and b]
    ticks = [(label, d) for label, value in marks if (d := registry_day(value))]
    if not spans or now is None:
        return ""
    first = min(a for _, a, _ in spans)
    last = max([now, *(b for _, _, b in spans), *(d for _, d in ticks)])
    total = max(1, (last - first).days)
    left, right, top, bar_h = 4, 4, 28, 22
    scale = (width - left - right) / total
    height = top + bar_h + 44 + 18 * ((len(spans) + 2) // 3)
    parts = _svg(width, height, 13, "Status over time")

    def x(d: date) -> float:
        return left + (d - first).days * scale

    for label, a, b in spans:
        fill = STATUS_COLORS.get(label, OTHER_STATUS)
        w = max(2.0, x(b) - x(a))
        parts.append(
            f'<rect x="{x(a):.1f}" y="{top}" width="{w:.1f}" height="{bar_h}" fill="{fill}">'
            f"<title>{escape(label)}: {a.isoformat()} to {b.isoformat()}</title></rect>"
        )
    for label, d in [("Today", now), *ticks]:
        tx = x(d)
        anchor = "end" if tx > width * 0.8 else ("start" if tx < width * 0.2 else "middle")
        dashed = "" if label == "Today" else ' stroke-dasharray="3 2"'
        parts += [
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{top + bar_h + 4}" '
            f'stroke="#111827" stroke-width="1.5"{dashed}/>',
            f'<text x="{tx:.1f}" y="{top + bar_h + 18}" text-anchor="{anchor}">{escape(label)}</text>',
        ]
    parts.append(f'<text x="{left}" y="{top + bar_h + 34}" fill="#4b5563">{first.isoformat()}</text>')
    legend_y = top + bar_h + 56
    seen: list[str] = []
    for label, _, _ in spans:
        if label not in seen:
            seen.append(label)
    entries = [(label, STATUS_COLORS.get(label, OTHER_STATUS)) for label in seen]
    parts += _legend(entries, width=width, top=legend_y, columns=3, row=18)
    parts.append("</svg>")
    return "".join(parts)
