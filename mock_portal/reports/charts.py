"""Inline SVG charts for the report and the dashboard: no script, no CDN, readable without colour
(every bar has a text label and a <title> tooltip).

Every marker a chart draws carries the class `mark-<kind>` and the chart's legend an entry of class
`legend-<kind>` for each kind drawn (`legend`), so a reader can tell what each marker means and a test
can check that none is left unexplained. The SVG text is laid out from a conservative estimate of its
width (`text_width`), so it stays inside the drawing whatever the font.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Key", "Segment", "StackedBar", "clip", "legend", "stacked_bars", "text_width"]

PALETTE = {"on_time": "#2e7d32", "late": "#ef6c00", "refused": "#c62828", "pending": "#90a4ae"}
CHAR_WIDTH = 0.62
"""The width of a character in font sizes, at the wide end of system-ui, DejaVu Sans and Noto Sans
with Vietnamese diacritics (measured in Chromium: 0.55)."""


def text_width(text: str, font_size: float) -> float:
    return len(text) * font_size * CHAR_WIDTH


def clip(text: str, font_size: float, room: float) -> str:
    """`text`, cut with an ellipsis to fit `room` pixels."""
    fits = max(int(room / (font_size * CHAR_WIDTH)), 1)
    return text if len(text) <= fits else text[: fits - 1] + "…"


@dataclass(frozen=True)
class Key:
    """A legend entry: the kind of marker it explains and its swatch, drawn in a 10×10 box at (x, y)."""

    kind: str
    label: str
    swatch: Callable[[float, float], str]


def legend(keys: Sequence[Key], *, x: float, y: float, width: float, font_size: int = 11) -> tuple[str, float]:
    """The entries from (x, y) rightwards, wrapping before `width`: the SVG and the y below its last line."""
    parts, left, line = [], x, font_size + 6
    for key in keys:
        label = clip(key.label, font_size, width - x - 14)
        step = 14 + text_width(label, font_size) + 12
        if left > x and left + step - 12 > width:
            left, y = x, y + line
        parts.append(
            f'<g class="legend-{escape(key.kind)}">{key.swatch(left, y)}'
            f'<text x="{left + 14:.1f}" y="{y + 9:.1f}" font-size="{font_size}">{escape(label)}</text></g>'
        )
        left += step
    return "".join(parts), y + line if keys else y


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


def _square(colour: str) -> Callable[[float, float], str]:
    return lambda x, y: f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{colour}"/>'


def stacked_bars(bars: Sequence[StackedBar], *, title: str, width: int = 720) -> Markup:
    """A horizontal stacked bar per item, scaled to the largest total, with the counts written on it."""
    bar_h, gap, top, total_w = 22, 10, 28, 60
    longest = max((text_width(b.label, 12) for b in bars), default=0)
    label_w = int(min(max(longest, 120), width * 0.4)) + 8
    plot_w = width - label_w - total_w
    largest = max((b.total for b in bars), default=0) or 1
    parts = [
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(clip(title, 14, width))}</text>',
    ]
    for i, bar in enumerate(bars):
        y = top + i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" font-size="12" text-anchor="end">'
            f"<title>{escape(bar.label)}</title>{escape(clip(bar.label, 12, label_w - 8))}</text>"
        )
        x = float(label_w)
        for segment in bar.segments:
            if segment.value <= 0:
                continue
            w = plot_w * segment.value / largest
            kind, colour = escape(segment.kind), PALETTE.get(segment.kind, "#607d8b")
            parts.append(
                f'<rect class="mark-{kind}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(segment.title)}: {segment.value}</title></rect>'
            )
            if w >= text_width(str(segment.value), 11) + 6:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11" '
                    f'text-anchor="middle">{segment.value}</text>'
                )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11">{bar.total}</text>')
    if not bars:
        parts.append(f'<text x="{label_w}" y="{top + 14}" font-size="12">Không có dữ liệu (no data)</text>')
    kinds: dict[str, str] = {}
    for bar in bars:
        for segment in bar.segments:
            kinds.setdefault(segment.kind, segment.title)
    keys = [Key(kind, name, _square(PALETTE.get(kind, "#607d8b"))) for kind, name in kinds.items()]
    below, height = legend(keys, x=label_w, y=top + max(len(bars), 1) * (bar_h + gap) + 4, width=width)
    height = int(height) + 4
    return Markup(  # noqa: S704 - every text escaped above
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">' + "".join(parts) + below + "</svg>"
    )
