"""Charts for the admin pages as inline SVG, drawn on the server: no JavaScript, no chart service.

Each function returns :class:`markupsafe.Markup` holding one ``<svg>`` that a
Jinja template inserts as it is (``{{ chart }}``). The SVG:

* is an image to assistive technology (``role="img"``), named by its ``<title>``
  and described by a ``<desc>`` that states the totals and the highs, and comes
  with :func:`data_table`, the same numbers as an HTML table;
* escapes every piece of text, because labels are citizens' questions;
* uses only SVG presentation attributes (``fill``, ``stroke``, ``font-size``) and
  ``class`` names, never ``style``: the app's Content-Security-Policy allows
  style sheets from the app itself only, so an inline style would be dropped. A
  page style sheet can still restyle a chart through the ``chart-*`` classes;
* has a ``viewBox`` and ``width="100%"``, so it scales with its container. The
  default 320-unit width is drawn for a phone: at 320 px the labels keep their
  12-14 px; on a wide page, cap the width in the style sheet (``.chart {max-width: 40rem}``);
* draws series in the colours of :data:`PALETTE`, which stay apart for readers
  with any common colour-vision deficiency, and lines also differ by dash and marker
  shape, so no reader depends on colour alone.

Empty data gives a chart that says 暂无数据 (no data) rather than an exception, so a
new deployment's dashboard renders.

Example:
    >>> svg = line_chart({"网页": [3, 5, 2], "热线": [1, 0, 4]}, ["11月24日", "11月25日", "11月26日"],
    ...                  title="每日咨询量")
    >>> svg.startswith("<svg") and 'role="img"' in svg
    True
    >>> "&lt;script&gt;" in bar_chart({"次数": [1]}, ["<script>"], title="热门问题")
    True
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["NO_DATA", "PALETTE", "bar_chart", "data_table", "line_chart", "stacked_bar_chart"]

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000")
"""Series colours: the Okabe-Ito colours that reach 3:1 contrast on white (WCAG 1.4.11).

Okabe and Ito chose their palette to stay distinct under protanopia, deuteranopia
and tritanopia; its orange, sky blue and yellow are left out because they are
too light to see against the white background. Pass ``colors=`` to reorder, e.g.
the vermilion for 无法回答.
"""

NO_DATA = "暂无数据"
"""What an empty chart says."""

Series = Mapping[str, Sequence[float | None]]
"""Series name -> one value per label; None (or NaN) is a missing value."""

_FONT_FAMILY = "'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
_TEXT = "#1a1a1a"  # body text colour of the site's style sheets
_AXIS = "#595959"  # 7:1 on white: axis lines and ticks must be seen
_GRID = "#d9d9d9"  # grid lines are decoration; light so they stay behind the data
_FONT = 12
_TITLE_FONT = 14
_PAD = 8
_MARKERS = ("circle", "square", "triangle", "diamond", "cross")
# Dash patterns differ as much as the markers do, so a line is identified without colour.
_DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4")
_COLOUR_RE = re.compile(r"#[0-9a-fA-F]{6}")
# XML 1.0 forbids these even as character references; a browser would forgive them, a parser would not.
_INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# -- public API ------------------------------------------------------------------


def line_chart(
    series: Series,
    labels: Sequence[str],
    *,
    title: str,
    description: str = "",
    percent: bool = False,
    colors: Sequence[str] | None = None,
    width: int = 320,
    height: int = 220,
    show_title: bool = True,
) -> Markup:
    """A line per series over the labels (days), with markers at the values.

    Args:
        series: name -> one value per label; None or NaN leaves a gap in the line.
        labels: the x axis, e.g. ``Dashboard.labels``; crowded labels are thinned,
            always keeping the last one (today).
        title: the chart's accessible name, also drawn on top unless ``show_title`` is False.
        description: a sentence put before the generated summary in ``<desc>``.
        percent: the values are shares from 0 to 1, shown as 0%-100%.
        colors: one ``#rrggbb`` per series instead of :data:`PALETTE`.
        width: width of the viewBox; the drawing scales, this sets the text's relative size.
        height: height of the viewBox.
        show_title: draw the title inside the SVG (the ``<title>`` is always there).

    Returns:
        The ``<svg>`` element.

    Raises:
        ValueError: a series' length differs from the labels', a value is negative, a colour is malformed.
    """
    data = _Data.check(series, labels, percent=percent, colors=colors)
    canvas = _Canvas("line", title, description, data, width, height, show_title)
    if data.empty:
        return canvas.empty()
    plot = canvas.plot_area(y_top=data.top, legend=data.names if len(data.names) > 1 else ())
    inset = 6.0  # keeps the first and last markers off the axis
    xs = _positions(len(data.labels), plot.left + inset, plot.right - inset)
    canvas.x_labels(plot, xs)
    for k, (name, values) in enumerate(data.series.items()):
        colour = data.colours[k]
        dash = _DASHES[k % len(_DASHES)]
        marker = _MARKERS[k % len(_MARKERS)]
        points = [(x, plot.y(v)) if v is not None else None for x, v in zip(xs, values, strict=True)]
        path = " ".join(_segments(points))
        parts = [f'<g class="chart-series chart-series-{k}">']
        if path:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"{dash_attr}/>'
            )
        for label, value, point in zip(data.labels, values, points, strict=True):
            if point is not None and value is not None:
                tip = f"{label} {name}：{data.fmt(value)}"
                parts.append(_marker(marker, point[0], point[1], colour, tip))
        parts.append("</g>")
        canvas.add("".join(parts))
    return canvas.finish()


def bar_chart(
    series: Series,
    labels: Sequence[str],
    *,
    title: str,
    description: str = "",
    horizontal: bool = False,
    percent: bool = False,
    colors: Sequence[str] | None = None,
    width: int = 320,
    height: int | None = None,
    show_title: bool = True,
) -> Markup:
    """Bars per label, one bar per series side by side, with the values written on them when they fit.

    Use ``horizontal=True`` for long labels such as questions: they get the left
    part of the chart, shortened with "…" when too long (the full text is the
    bar's tooltip and is in :func:`data_table`).

    Args:
        series: name -> one value per label; None or NaN draws no bar.
        labels: the categories (days, outcomes, questions).
        title: the chart's accessible name, also drawn on top unless ``show_title`` is False.
        description: a sentence put before the generated summary in ``<desc>``.
        horizontal: bars grow to the right, one row per label.
        percent: the values are shares from 0 to 1, shown as 0%-100%.
        colors: one ``#rrggbb`` per series instead of :data:`PALETTE`.
        width: width of the viewBox.
        height: height of the viewBox; by default 220, or enough rows for every label when horizontal.
        show_title: draw the title inside the SVG.

    Returns:
        The ``<svg>`` element.

    Raises:
        ValueError: a series' length differs from the labels', a value is negative, a colour is malformed.
    """
    data = _Data.check(series, labels, percent=percent, colors=colors)
    legend = data.names if len(data.names) > 1 else ()
    if height is None:
        height = 220
        if horizontal and not data.empty:
            row = max(24, 14 * len(data.names) + 8)
            # Grow with the labels so that ten questions stay readable; one legend row is assumed.
            legend_rows = _FONT + 12 if legend else 0
            height = max(120, round(_header_height(show_title) + legend_rows + row * len(data.labels) + 2 * _PAD))
    canvas = _Canvas("bar", title, description, data, width, height, show_title)
    if data.empty:
        return canvas.empty()
    if horizontal:
        _horizontal_bars(canvas, data, legend)
        return canvas.finish()
    plot = canvas.plot_area(y_top=data.top, legend=legend)
    slot = plot.width / len(data.labels)
    # Capped, so that three outcomes do not become three walls of colour.
    bar = min(slot * 0.8 / len(data.names), 40.0)
    xs = [plot.left + slot * (i + 0.5) for i in range(len(data.labels))]
    canvas.x_labels(plot, xs)
    offset = bar * len(data.names) / 2
    for k, (name, values) in enumerate(data.series.items()):
        parts = [f'<g class="chart-series chart-series-{k}">']
        for i, (label, value) in enumerate(zip(data.labels, values, strict=True)):
            if value is None:
                continue
            x = xs[i] - offset + bar * k
            y = plot.y(value)
            text = data.fmt(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{plot.bottom - y:.1f}" '
                f'fill="{data.colours[k]}"><title>{_esc(f"{label} {name}：{text}")}</title></rect>'
            )
            if _text_width(text, _FONT - 1) + 2 <= bar:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="{_FONT - 1}" '
                    f'fill="{_TEXT}">{_esc(text)}</text>'
                )
        parts.append("</g>")
        canvas.add("".join(parts))
    return canvas.finish()


def stacked_bar_chart(
    series: Series,
    labels: Sequence[str],
    *,
    title: str,
    description: str = "",
    percent: bool = False,
    colors: Sequence[str] | None = None,
    width: int = 320,
    height: int = 220,
    show_title: bool = True,
) -> Markup:
    """One bar per label made of the series stacked in order, the first at the bottom.

    Meant for the decisions of each day: ``percent=True`` with the three rates
    fills each day's bar to 100%; a day without questions has no bar.

    Args:
        series: name -> one value per label, stacked in the mapping's order; None draws nothing.
            For rates, give None (not 0) on days without questions, so that ``<desc>``
            does not report them as lows of 0% (``Dashboard.rate_series()`` does).
        labels: the x axis, e.g. ``Dashboard.labels``.
        title: the chart's accessible name, also drawn on top unless ``show_title`` is False.
        description: a sentence put before the generated summary in ``<desc>``.
        percent: the values are shares from 0 to 1, shown as 0%-100%.
        colors: one ``#rrggbb`` per series instead of :data:`PALETTE`.
        width: width of the viewBox.
        height: height of the viewBox.
        show_title: draw the title inside the SVG.

    Returns:
        The ``<svg>`` element.

    Raises:
        ValueError: a series' length differs from the labels', a value is negative, a colour is malformed.
    """
    data = _Data.check(series, labels, percent=percent, colors=colors)
    canvas = _Canvas("stacked", title, description, data, width, height, show_title)
    if data.empty:
        return canvas.empty()
    stacks = [sum(v or 0.0 for v in day) for day in zip(*data.series.values(), strict=True)]
    plot = canvas.plot_area(y_top=max(stacks), legend=data.names if len(data.names) > 1 else ())
    slot = plot.width / len(data.labels)
    bar = min(max(slot * 0.75, 1.0), 40.0)
    xs = [plot.left + slot * (i + 0.5) for i in range(len(data.labels))]
    canvas.x_labels(plot, xs)
    base = [0.0] * len(data.labels)
    for k, (name, values) in enumerate(data.series.items()):
        parts = [f'<g class="chart-series chart-series-{k}">']
        for i, (label, value) in enumerate(zip(data.labels, values, strict=True)):
            if not value:
                continue
            y0, y1 = plot.y(base[i]), plot.y(base[i] + value)
            base[i] += value
            # A white edge keeps neighbouring segments apart whatever their colours.
            parts.append(
                f'<rect x="{xs[i] - bar / 2:.1f}" y="{y1:.1f}" width="{bar:.1f}" height="{y0 - y1:.1f}" '
                f'fill="{data.colours[k]}" stroke="#ffffff" stroke-width="0.75">'
                f"<title>{_esc(f'{label} {name}：{data.fmt(value)}')}</title></rect>"
            )
        parts.append("</g>")
        canvas.add("".join(parts))
    return canvas.finish()


def data_table(
    series: Series,
    labels: Sequence[str],
    *,
    caption: str,
    label_header: str = "日期",
    percent: bool = False,
    totals: bool = False,
) -> Markup:
    """The numbers of a chart as an HTML table, for screen readers and for copying.

    Render it next to the chart, e.g. in ``<details><summary>数据表</summary>…</details>``.
    A row per label and a column per series, with ``scope`` on the headers so a
    screen reader announces "11月26日, 网页, 3".

    Args:
        series: the same mapping the chart got.
        labels: the same labels the chart got.
        caption: the table's caption, usually the chart's title.
        label_header: the header of the label column.
        percent: format the values as percentages.
        totals: add a 合计 (total) row; meaningful for counts, not for rates.

    Returns:
        The ``<table>`` element; empty data gives a table whose only row says 暂无数据.

    Raises:
        ValueError: a series' length differs from the labels', a value is negative.
    """
    data = _Data.check(series, labels, percent=percent, colors=None)
    head = "".join(f'<th scope="col">{_esc(name)}</th>' for name in data.names)
    parts = [
        f'<table class="chart-data-table"><caption>{_esc(caption)}</caption>',
        f'<thead><tr><th scope="col">{_esc(label_header)}</th>{head}</tr></thead><tbody>',
    ]
    has_data = bool(data.labels and data.names)
    if not has_data:
        parts.append(f'<tr><td colspan="{len(data.names) + 1}">{_esc(NO_DATA)}</td></tr>')
    for i, label in enumerate(data.labels if has_data else []):
        cells = "".join(f"<td>{_esc(data.fmt(values[i]))}</td>" for values in data.series.values())
        parts.append(f'<tr><th scope="row">{_esc(label)}</th>{cells}</tr>')
    parts.append("</tbody>")
    if totals and has_data:
        sums = "".join(
            f"<td>{_esc(data.fmt(sum(v for v in values if v is not None)))}</td>" for values in data.series.values()
        )
        parts.append(f'<tfoot><tr><th scope="row">合计</th>{sums}</tr></tfoot>')
    parts.append("</table>")
    return Markup("".join(parts))


# -- data ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Validated input: labels and series as lists of the same length, missing values as None."""

    labels: list[str]
    series: dict[str, list[float | None]]
    percent: bool
    colours: list[str]

    @classmethod
    def check(cls, series: Series, labels: Sequence[str], *, percent: bool, colors: Sequence[str] | None) -> _Data:
        labels = [str(label) for label in labels]
        clean: dict[str, list[float | None]] = {}
        for name, values in series.items():
            if len(values) != len(labels):
                raise ValueError(
                    f"series {name!r} has {len(values)} values for {len(labels)} labels; give one value per label"
                )
            row: list[float | None] = []
            for label, value in zip(labels, values, strict=True):
                if value is None or not math.isfinite(value):
                    row.append(None)
                elif value < 0:
                    raise ValueError(
                        f"series {name!r} has {value!r} at {label!r}; charts show counts and rates, which are >= 0"
                    )
                else:
                    row.append(float(value))
            clean[str(name)] = row
        colours = list(colors) if colors is not None else []
        for colour in colours:
            if not isinstance(colour, str) or not _COLOUR_RE.fullmatch(colour):
                raise ValueError(f"colour {colour!r} is not of the form #rrggbb")
        if colors is not None and len(colours) < len(clean):
            raise ValueError(f"{len(colours)} colours for {len(clean)} series; give one colour per series")
        if not colours:
            colours = [PALETTE[k % len(PALETTE)] for k in range(len(clean))]
        return cls(labels, clean, percent, colours)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.series)

    @property
    def empty(self) -> bool:
        return not any(v is not None for values in self.series.values() for v in values)

    @property
    def top(self) -> float:
        return max((v for values in self.series.values() for v in values if v is not None), default=0.0)

    @property
    def integral(self) -> bool:
        return all(v is None or v.is_integer() for values in self.series.values() for v in values)

    def fmt(self, value: float | None) -> str:
        """A value as the chart writes it; "—" for a missing value."""
        if value is None:
            return "—"
        if self.percent:
            return f"{value * 100:.1f}%"
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")

    def summary(self) -> str:
        """One sentence per series for ``<desc>``: totals and highs for counts, highs and lows for rates."""
        sentences = []
        for name, values in self.series.items():
            known = [(v, label) for v, label in zip(values, self.labels, strict=True) if v is not None]
            if not known:
                sentences.append(f"{name}：无数据")
                continue
            high = max(known, key=lambda item: item[0])
            if self.percent:
                low = min(known, key=lambda item: item[0])
                sentences.append(f"{name}：最高 {self.fmt(high[0])}（{high[1]}），最低 {self.fmt(low[0])}（{low[1]}）")
            else:
                total = sum(v for v, _ in known)
                sentences.append(f"{name}：合计 {self.fmt(total)}，最高 {self.fmt(high[0])}（{high[1]}）")
        span = f"{self.labels[0]}至{self.labels[-1]}，共 {len(self.labels)} 项" if len(self.labels) > 1 else ""
        return "；".join(s for s in [span, *sentences] if s) + "。"


# -- drawing ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Plot:
    """The rectangle the data is drawn in, and the value scale of its y axis."""

    left: float
    top: float
    right: float
    bottom: float
    y_max: float

    @property
    def width(self) -> float:
        return self.right - self.left

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * min(value, self.y_max) / self.y_max


class _Canvas:
    """Collects the elements of one chart; the header (title, desc, legend) is common to all kinds."""

    def __init__(
        self, kind: str, title: str, description: str, data: _Data, width: int, height: int, show_title: bool
    ) -> None:
        if not isinstance(title, str) or not title.strip():
            raise ValueError("a chart needs a title: it is the chart's name for screen readers")
        for name, size, low in (("width", width, 160), ("height", height, 100)):
            if not isinstance(size, int) or size < low:
                raise ValueError(f"{name} must be an int >= {low}, got {size!r}")
        self.kind = kind
        self.title = title.strip()
        self.description = description.strip()
        self.data = data
        self.width = width
        self.height = height
        self.show_title = show_title
        self.parts: list[str] = []
        digest = hashlib.blake2s(repr((kind, title, description, data)).encode(), digest_size=5)
        # Derived from the content, so that the output is reproducible and two
        # different charts on one page do not share ids.
        self.id = f"chart-{digest.hexdigest()}"

    def add(self, element: str) -> None:
        self.parts.append(element)

    def _open(self, desc: str) -> list[str]:
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{self.kind}" '
            f'viewBox="0 0 {self.width} {self.height}" width="100%" role="img" '
            f'aria-labelledby="{self.id}-title" aria-describedby="{self.id}-desc" '
            f'font-family="{_FONT_FAMILY}" font-size="{_FONT}">',
            f'<title id="{self.id}-title">{_esc(self.title)}</title>',
            f'<desc id="{self.id}-desc">{_esc(desc)}</desc>',
            f'<rect class="chart-background" width="{self.width}" height="{self.height}" fill="#ffffff"/>',
        ]
        if self.show_title:
            text = _fit(self.title, _TITLE_FONT, self.width - 2 * _PAD)
            parts.append(
                f'<text class="chart-title" x="{_PAD}" y="{_PAD + _TITLE_FONT}" font-size="{_TITLE_FONT}" '
                f'font-weight="bold" fill="{_TEXT}">{_esc(text)}</text>'
            )
        return parts

    def empty(self) -> Markup:
        """The chart for no data: the title and 暂无数据 in the middle, so the page still explains itself."""
        desc = "；".join(s for s in (self.description, NO_DATA) if s) + "。"
        parts = self._open(desc)
        parts.append(
            f'<text class="chart-no-data" x="{self.width / 2:.1f}" y="{self.height / 2:.1f}" '
            f'text-anchor="middle" dominant-baseline="middle" font-size="{_TITLE_FONT}" fill="{_AXIS}">'
            f"{_esc(NO_DATA)}</text>"
        )
        parts.append("</svg>")
        return Markup("".join(parts))

    def finish(self) -> Markup:
        desc = self.data.summary()
        if self.description:
            stop = "" if self.description.endswith(("。", ".", "！", "？")) else "。"
            desc = f"{self.description}{stop}{desc}"
        return Markup("".join([*self._open(desc), *self.parts, "</svg>"]))

    def legend(self, names: Sequence[str], top: float) -> float:
        """Draw the legend from ``top``, wrapping rows; returns the y below it."""
        if not names:
            return top
        x, y = float(_PAD), top
        row = _FONT + 8
        parts = ['<g class="chart-legend">']
        for k, name in enumerate(names):
            text = _fit(name, _FONT, self.width - 2 * _PAD - 28)
            item = 26 + _text_width(text, _FONT) + 12
            if x > _PAD and x + item > self.width - _PAD:
                x, y = float(_PAD), y + row
            colour = self.data.colours[k]
            if self.kind == "line":
                dash = _DASHES[k % len(_DASHES)]
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(
                    f'<line x1="{x:.1f}" y1="{y + row / 2:.1f}" x2="{x + 22:.1f}" y2="{y + row / 2:.1f}" '
                    f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
                )
                parts.append(_marker(_MARKERS[k % len(_MARKERS)], x + 11, y + row / 2, colour, ""))
            else:
                parts.append(
                    f'<rect x="{x + 5:.1f}" y="{y + row / 2 - 6:.1f}" width="12" height="12" fill="{colour}"/>'
                )
            parts.append(
                f'<text x="{x + 26:.1f}" y="{y + row / 2:.1f}" dominant-baseline="middle" fill="{_TEXT}">'
                f"{_esc(text)}</text>"
            )
            x += item
        parts.append("</g>")
        self.add("".join(parts))
        return y + row + 4

    def plot_area(self, *, y_top: float, legend: Sequence[str]) -> _Plot:
        """Lay out header, legend and y axis; draw the grid and the y tick labels."""
        # Half a line of room, because the top tick's label is centred on the top grid line.
        top = self.legend(legend, _header_height(self.show_title)) + _FONT / 2 + 4
        ticks = _ticks(y_top, percent=self.data.percent, integral=self.data.integral)
        texts = [_tick_text(t, self.data.percent) for t in ticks]
        left = _PAD + max(_text_width(t, _FONT) for t in texts) + 6
        # Room for half of the last x label, which sits under the last value (today) and must not be pushed aside.
        right = self.width - max(_PAD, math.ceil(_text_width(self.data.labels[-1], _FONT) / 2) - 4)
        plot = _Plot(left, top, right, self.height - _PAD - _FONT - 6, ticks[-1])
        parts = ['<g class="chart-grid">']
        for tick, text in zip(ticks, texts, strict=True):
            y = plot.y(tick)
            colour = _AXIS if tick == 0 else _GRID
            parts.append(
                f'<line x1="{plot.left:.1f}" y1="{y:.1f}" x2="{plot.right:.1f}" y2="{y:.1f}" stroke="{colour}" '
                'stroke-width="1"/>'
            )
            parts.append(
                f'<text x="{plot.left - 4:.1f}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle" '
                f'fill="{_TEXT}">{_esc(text)}</text>'
            )
        parts.append("</g>")
        self.add("".join(parts))
        return plot

    def x_labels(self, plot: _Plot, xs: Sequence[float]) -> None:
        """Tick labels under the plot, thinned so they do not overlap, counting back from the last."""
        labels = self.data.labels
        widest = max(_text_width(label, _FONT) for label in labels) + 8
        stride = max(1, math.ceil(widest * len(labels) / max(plot.width, 1.0)))
        y = plot.bottom + _FONT + 4
        parts = ['<g class="chart-x-axis">']
        for i in range(len(labels) - 1, -1, -stride):
            text = _fit(labels[i], _FONT, max(plot.width / 2, 40))
            half = _text_width(text, _FONT) / 2
            x = min(max(xs[i], half + 1), self.width - half - 1)  # keep the end labels inside the viewBox
            parts.append(
                f'<line x1="{xs[i]:.1f}" y1="{plot.bottom:.1f}" x2="{xs[i]:.1f}" y2="{plot.bottom + 3:.1f}" '
                f'stroke="{_AXIS}" stroke-width="1"/>'
            )
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{_TEXT}">{_esc(text)}</text>')
        parts.append("</g>")
        self.add("".join(parts))


def _horizontal_bars(canvas: _Canvas, data: _Data, legend: Sequence[str]) -> None:
    """Bars to the right, one row per label; the values are written at the bars' ends."""
    top = canvas.legend(legend, _header_height(canvas.show_title)) + 4
    width = canvas.width
    label_width = min(max(_text_width(label, _FONT) for label in data.labels) + 6, width * 0.45)
    value_width = max(_text_width(data.fmt(v), _FONT - 1) for values in data.series.values() for v in values) + 6
    left = _PAD + label_width
    plot = _Plot(left, top, width - _PAD - value_width, canvas.height - _PAD, data.top or 1.0)
    row = (plot.bottom - plot.top) / len(data.labels)
    bar = min(row * 0.75 / len(data.names), 24.0)
    parts = ['<g class="chart-y-axis">']
    for i, label in enumerate(data.labels):
        y = plot.top + row * (i + 0.5)
        text = _fit(label, _FONT, label_width - 6)
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle" fill="{_TEXT}">'
            f"{_esc(text)}<title>{_esc(label)}</title></text>"
        )
    parts.append(f'<line x1="{left:.1f}" y1="{plot.top:.1f}" x2="{left:.1f}" y2="{plot.bottom:.1f}" stroke="{_AXIS}"/>')
    parts.append("</g>")
    canvas.add("".join(parts))
    scale = plot.width / plot.y_max
    for k, (name, values) in enumerate(data.series.items()):
        parts = [f'<g class="chart-series chart-series-{k}">']
        for i, (label, value) in enumerate(zip(data.labels, values, strict=True)):
            if value is None:
                continue
            y = plot.top + row * (i + 0.5) - bar * len(data.names) / 2 + bar * k
            length = value * scale
            text = data.fmt(value)
            parts.append(
                f'<rect x="{left:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar:.1f}" '
                f'fill="{data.colours[k]}"><title>{_esc(f"{label} {name}：{text}")}</title></rect>'
            )
            parts.append(
                f'<text x="{left + length + 3:.1f}" y="{y + bar / 2:.1f}" dominant-baseline="middle" '
                f'font-size="{_FONT - 1}" fill="{_TEXT}">{_esc(text)}</text>'
            )
        parts.append("</g>")
        canvas.add("".join(parts))


def _header_height(show_title: bool) -> float:
    """Where the legend (or the plot) starts: below the drawn title."""
    return float(_PAD + _TITLE_FONT + 8 if show_title else _PAD)


def _positions(n: int, start: float, end: float) -> list[float]:
    if n == 1:
        return [(start + end) / 2]
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def _segments(points: Sequence[tuple[float, float] | None]) -> Iterator[str]:
    """Path commands through the points, lifting the pen over missing ones."""
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        yield f"{'L' if pen_down else 'M'}{point[0]:.1f},{point[1]:.1f}"
        pen_down = True


def _marker(shape: str, x: float, y: float, colour: str, tip: str) -> str:
    title = f"<title>{_esc(tip)}</title>" if tip else ""
    s = 3.5
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" fill="{colour}">{title}</circle>'
    if shape == "square":
        return (
            f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" fill="{colour}">'
            f"{title}</rect>"
        )
    if shape == "triangle":
        d = f"M{x:.1f},{y - s - 1:.1f} L{x + s + 0.5:.1f},{y + s:.1f} L{x - s - 0.5:.1f},{y + s:.1f} Z"
        return f'<path d="{d}" fill="{colour}">{title}</path>'
    if shape == "diamond":
        d = f"M{x:.1f},{y - s - 1:.1f} L{x + s + 1:.1f},{y:.1f} L{x:.1f},{y + s + 1:.1f} L{x - s - 1:.1f},{y:.1f} Z"
        return f'<path d="{d}" fill="{colour}">{title}</path>'
    d = f"M{x - s:.1f},{y - s:.1f} L{x + s:.1f},{y + s:.1f} M{x - s:.1f},{y + s:.1f} L{x + s:.1f},{y - s:.1f}"
    return f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2">{title}</path>'


def _ticks(top: float, *, percent: bool, integral: bool) -> list[float]:
    """Round tick values from 0 to at least ``top``: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if percent:
        top = max(top, 1.0)  # rates are always shown on the full 0%-100% scale, so days compare honestly
    if top <= 0:
        top = 1.0  # all zeros: an axis from 0 to 1 rather than a division by zero
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integral and not percent:
        step = float(max(1, math.ceil(step)))  # counts: no tick at 2.5 questions
    # The tolerance keeps float noise (0.33 + 0.56 + 0.11 > 1) from adding a tick at 125%.
    count = math.ceil(top / step - 1e-6)
    return [round(i * step, 10) for i in range(count + 1)]


def _tick_text(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:g}%"
    if value >= 10_000:
        return f"{value / 10_000:g}万"
    return f"{value:g}"


def _text_width(text: str, size: float) -> float:
    """Estimated drawn width: CJK and full-width characters are 1 em, others about 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in text)


def _fit(text: str, size: float, width: float) -> str:
    """``text`` shortened with "…" to fit ``width``; the full text stays in the tooltip and the table."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _esc(text: str) -> str:
    return str(escape(_INVALID_XML_RE.sub("", text)))
