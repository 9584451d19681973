"""Inline SVG charts for the report and the dashboard: no script, no CDN, readable without colour
(every bar has a text label and a <title> tooltip)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Segment", "StackedBar", "stacked_bars"]

PALETTE = {"on_time": "#2e7d32", "late": "#ef6c00", "refused": "#c62828", "pending": "#90a4ae"}


@dataclass(frozen=True)
class Segment:
    value: int
    kind: str
    """A key of PALETTE."""
    title: str


@dataclass(frozen=True)
class StackedBar:
    label: str
    segments: tuple[Segment, ...]

    @property
    def total(self) -> int:
        return sum(s.value for s in self.segments)


def stacked_bars(bars: Sequence[StackedBar], *, title: str, width: int = 720) -> Markup:
    """A horizontal stacked bar per item, scaled to the largest total, with the counts written on it."""
    label_w, bar_h, gap, top = 180, 22, 10, 28
    plot_w = width - label_w - 60
    height = top + len(bars) * (bar_h + gap) + 30
    largest = max((b.total for b in bars), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = top + i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" font-size="12" text-anchor="end">'
            f"{escape(bar.label[:28])}</text>"
        )
        x = float(label_w)
        for segment in bar.segments:
            if segment.value <= 0:
                continue
            w = plot_w * segment.value / largest
            colour = PALETTE.get(segment.kind, "#607d8b")
            parts.append(
                f'<rect class="seg-{escape(segment.kind)}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(segment.title)}: {segment.value}</title></rect>'
            )
            if w >= 18:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11" fill="#fff" '
                    f'text-anchor="middle">{segment.value}</text>'
                )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11">{bar.total}</text>')
    legend_y = height - 10
    seen: dict[str, str] = {}
    for bar in bars:
        for segment in bar.segments:
            seen.setdefault(segment.kind, segment.title)
    x = float(label_w)
    for kind, name in seen.items():
        parts.append(
            f'<rect x="{x:.1f}" y="{legend_y - 10}" width="10" height="10" fill="{PALETTE.get(kind, "#607d8b")}"/>'
            f'<text x="{x + 14:.1f}" y="{legend_y}" font-size="11">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    if not bars:
        parts.append(f'<text x="{label_w}" y="{top + 14}" font-size="12">Không có dữ liệu (no data)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
