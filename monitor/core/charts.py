"""Small inline SVG charts for the self-contained HTML report. Pure, no dependencies.

Hand-drawn on purpose: two chart shapes (horizontal bars, columns over time) do not
justify a plotting library and its fonts, and inline SVG prints and scales cleanly.
Every label is XML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

PALETTE = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#65a30d", "#db2777")


def hbar(title: str, items: Sequence[tuple[str, int]], *, width: int = 460, color: str = PALETTE[0]) -> str:
    """Horizontal bars, one per (label, count), largest first as given."""
    if not items:
        return ""
    row, label_w, top = 20, 190, 26
    height = top + row * len(items) + 6
    peak = max(n for _, n in items) or 1
    bar_w = width - label_w - 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="15" font-weight="bold" font-size="13">{escape(title)}</text>',
    ]
    for i, (label, n) in enumerate(items):
        y = top + i * row
        w = max(1, round(bar_w * n / peak))
        shown = label if len(label) <= 30 else label[:29] + "…"
        parts += [
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(shown)}</text>',
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="13" fill="{color}" rx="2"/>',
            f'<text x="{label_w + w + 4}" y="{y + 13}">{n}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def columns(
    title: str, items: Sequence[tuple[str, int]], *, width: int = 620, color: str = PALETTE[1]
) -> str:
    """Vertical columns over ordered categories (years, quarters)."""
    if not items:
        return ""
    top, bottom, left = 28, 22, 8
    height = 190
    plot_h = height - top - bottom
    slot = (width - left) / len(items)
    peak = max(n for _, n in items) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="15" font-weight="bold" font-size="13">{escape(title)}</text>',
    ]
    for i, (label, n) in enumerate(items):
        h = round(plot_h * n / peak)
        x = left + i * slot
        w = max(2.0, slot * 0.7)
        parts += [
            f'<rect x="{x:.1f}" y="{top + plot_h - h}" width="{w:.1f}" height="{h}" fill="{color}" rx="2"/>',
            f'<text x="{x + w / 2:.1f}" y="{top + plot_h - h - 3}" text-anchor="middle">{n or ""}</text>',
            f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def stacked(title: str, items: Sequence[tuple[str, int]], *, width: int = 620) -> str:
    """One 100% bar split by category, with a legend: a status mix at a glance."""
    total = sum(n for _, n in items)
    if not total:
        return ""
    height = 40 + 18 * ((len(items) + 2) // 3)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="15" font-weight="bold" font-size="13">{escape(title)}</text>',
    ]
    x = 0.0
    for i, (_, n) in enumerate(items):
        w = width * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="22" width="{w:.1f}" height="14" fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        x += w
    for i, (label, n) in enumerate(items):
        lx, ly = (i % 3) * (width / 3), 52 + (i // 3) * 18
        parts += [
            f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>',
            f'<text x="{lx + 14:.1f}" y="{ly}">{escape(label)} ({n})</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)
