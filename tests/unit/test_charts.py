"""Server-rendered SVG charts: well-formed, escaped, accessible, and never an exception for thin data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from markupsafe import Markup, escape

from web_widget.charts import NO_DATA, PALETTE, bar_chart, data_table, line_chart, stacked_bar_chart

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [f"11月{d}日" for d in range(20, 27)]
HOSTILE = "<script>alert('x')</script> & \"引号\""


def horizontal_bar_chart(series, labels, **kwargs):
    return bar_chart(series, labels, horizontal=True, **kwargs)


KINDS: list[Callable[..., Markup]] = [line_chart, bar_chart, horizontal_bar_chart, stacked_bar_chart]


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def texts(root: ET.Element) -> list[str]:
    """Every piece of text in the drawing, tooltips and <desc> included, as a reader gets it."""
    return [el.text for el in root.iter() if el.text]


def series_elements(root: ET.Element, k: int) -> list[ET.Element]:
    group = next(g for g in root.iter(f"{SVG}g") if f"chart-series-{k}" in g.get("class", "").split())
    return [el for el in group if el.tag != f"{SVG}title"]


# -- structure and accessibility ----------------------------------------------------


@pytest.mark.parametrize("chart", KINDS)
def test_every_chart_is_an_accessible_svg_image_named_by_its_title(chart):
    root = parse(chart({"网页": [3, 5, 2, 0, 1, 4, 6], "热线": [1, 0, 4, 2, 2, 3, 1]}, DAYS, title="每日咨询量"))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 ") and root.get("width") == "100%"
    title, desc = root[0], root[1]
    assert title.tag == f"{SVG}title" and title.text == "每日咨询量"
    assert desc.tag == f"{SVG}desc" and "网页" in (desc.text or "") and "热线" in (desc.text or "")
    assert root.get("aria-labelledby") == title.get("id") and root.get("aria-describedby") == desc.get("id")
    assert "网页" in texts(root) and "热线" in texts(root)  # the legend


@pytest.mark.parametrize("chart", KINDS)
def test_no_inline_style_and_no_script_so_the_content_security_policy_holds(chart):
    root = parse(chart({"a": [1, 2, 3], "b": [2, 0, 1]}, DAYS[:3], title="t", description="说明"))
    for el in root.iter():
        assert "style" not in el.attrib, el.tag
        assert not any(name.startswith("on") for name in el.attrib), el.tag
        assert el.tag.removeprefix(SVG) not in {"style", "script", "foreignObject", "image", "a", "use"}


def test_the_description_states_totals_and_highs_after_the_given_sentence():
    root = parse(line_chart({"网页": [3, 5, 2]}, DAYS[:3], title="每日咨询量", description="近三天网页咨询"))
    assert root[1].text == "近三天网页咨询。11月20日至11月22日，共 3 项；网页：合计 10，最高 5（11月21日）。"


def test_a_rate_description_gives_highs_and_lows_in_percent():
    root = parse(stacked_bar_chart({"回答率": [0.5, 0.75]}, DAYS[:2], title="回答率", percent=True))
    assert "最高 75.0%（11月21日），最低 50.0%（11月20日）" in (root[1].text or "")


def test_the_default_size_is_drawn_for_a_phone_so_text_stays_readable_at_320_px():
    root = parse(line_chart({"a": [1, 2]}, DAYS[:2], title="t"))
    assert root.get("viewBox", "").split()[2] == "320"
    assert int(root.get("font-size", "0")) >= 12
    assert all(float(el.get("font-size", "12")) >= 11 for el in root.iter(f"{SVG}text"))


def test_the_output_is_reproducible_and_different_charts_get_different_ids():
    a = line_chart({"a": [1, 2]}, DAYS[:2], title="甲")
    assert a == line_chart({"a": [1, 2]}, DAYS[:2], title="甲")
    assert parse(a)[0].get("id") != parse(line_chart({"a": [1, 3]}, DAYS[:2], title="甲"))[0].get("id")


def test_a_chart_passes_through_jinja_autoescaping_unchanged():
    svg = bar_chart({"a": [1]}, ["x"], title="t")
    assert escape(svg) == svg


# -- escaping ----------------------------------------------------------------------


@pytest.mark.parametrize("chart", KINDS)
def test_hostile_labels_names_and_titles_come_out_escaped(chart):
    svg = chart({HOSTILE: [1, 2]}, [HOSTILE, "正常"], title=HOSTILE, description=HOSTILE)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    root = parse(svg)  # a quote in a label must not break out of anything either
    assert root[0].text == HOSTILE
    assert sum(HOSTILE in text for text in texts(root)) >= 3  # title, desc and at least one tooltip


def test_characters_that_xml_forbids_are_dropped_not_passed_on():
    root = parse(bar_chart({"a\x00b": [1]}, ["c\x1bd\ufffe"], title="t\x08"))
    assert root[0].text == "t" and (root[1].text or "").startswith("ab：")
    assert "cd" in texts(root)


def test_labels_that_do_not_fit_are_shortened_with_the_full_text_in_the_tooltip():
    long = "社保怎么转移到外地去办理需要带什么材料到哪里办"
    root = parse(bar_chart({"次数": [9]}, [long], title="热门问题", horizontal=True))
    assert any(t.endswith("…") and long.startswith(t[:-1]) for t in texts(root))
    assert long in texts(root)


# -- thin data ---------------------------------------------------------------------


@pytest.mark.parametrize("chart", KINDS)
@pytest.mark.parametrize(
    ("series", "labels"),
    [({}, []), ({}, DAYS), ({"a": []}, []), ({"a": [None, None]}, DAYS[:2]), ({"a": [math.nan]}, DAYS[:1])],
)
def test_no_data_gives_a_chart_that_says_so(chart, series, labels):
    root = parse(chart(series, labels, title="每日咨询量"))
    assert root[0].text == "每日咨询量"
    assert NO_DATA in (root[1].text or "") and NO_DATA in texts(root)
    assert not list(root.iter(f"{SVG}path")) and not list(root.iter(f"{SVG}circle"))


@pytest.mark.parametrize("chart", KINDS)
def test_all_zero_values_give_an_axis_from_zero_and_no_error(chart):
    root = parse(chart({"网页": [0, 0, 0], "热线": [0, 0, 0]}, DAYS[:3], title="每日咨询量"))
    assert NO_DATA not in texts(root)
    assert "0" in texts(root)
    assert "网页：合计 0" in (root[1].text or "")


def test_all_zero_stacked_bars_draw_no_bar():
    root = parse(stacked_bar_chart({"a": [0, 0], "b": [0, 0]}, DAYS[:2], title="t"))
    assert series_elements(root, 0) == [] and series_elements(root, 1) == []


@pytest.mark.parametrize("chart", KINDS)
def test_a_single_day(chart):
    root = parse(chart({"网页": [4], "热线": [2]}, ["11月26日"], title="今天"))
    assert "11月26日" in texts(root)
    assert len(series_elements(root, 0)) >= 1 and len(series_elements(root, 1)) >= 1


def test_a_single_day_line_is_a_marker_in_the_middle():
    root = parse(line_chart({"网页": [4]}, ["11月26日"], title="今天", width=320))
    (path, marker) = series_elements(root, 0)
    assert "L" not in path.get("d", "")
    assert marker.tag == f"{SVG}circle" and 120 < float(marker.get("cx", "0")) < 200


def test_a_missing_value_breaks_the_line_and_is_a_dash_in_the_table():
    root = parse(line_chart({"a": [1, 2, None, 3, 4]}, [*DAYS[:5]], title="t"))
    path = series_elements(root, 0)[0]
    assert path.get("d", "").count("M") == 2
    assert "<td>—</td>" in data_table({"a": [1, None]}, DAYS[:2], caption="t")


# -- axes, legend, colours ---------------------------------------------------------


def test_crowded_day_labels_are_thinned_and_today_is_always_labelled():
    labels = [f"{m}月{d}日" for m, d in [(10, d) for d in range(28, 32)] + [(11, d) for d in range(1, 27)]]
    root = parse(line_chart({"a": list(range(30))}, labels, title="t"))
    axis = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-x-axis")
    shown = [t.text for t in axis.iter(f"{SVG}text")]
    assert 3 <= len(shown) < 30 and "11月26日" in shown


def test_percent_charts_use_the_full_zero_to_hundred_scale():
    root = parse(stacked_bar_chart({"a": [0.2], "b": [0.1]}, ["11月26日"], title="t", percent=True))
    assert {"0%", "50%", "100%"} <= set(texts(root))


def test_rates_that_add_up_to_a_hair_over_one_stay_on_the_hundred_percent_scale():
    assert 0.33 + 0.56 + 0.11 > 1
    root = parse(stacked_bar_chart({"a": [0.33], "b": [0.56], "c": [0.11]}, ["x"], title="t", percent=True))
    assert "100%" in texts(root) and "125%" not in texts(root)


def test_a_day_without_questions_draws_no_bar_and_is_not_a_low():
    root = parse(stacked_bar_chart({"回答": [None, 0.8], "无法回答": [None, 0.2]}, DAYS[:2], title="t", percent=True))
    assert len(series_elements(root, 0)) == 1
    assert "最低 80.0%（11月21日）" in (root[1].text or "")


def test_count_axes_have_whole_number_ticks():
    root = parse(bar_chart({"a": [1, 3, 2]}, DAYS[:3], title="t"))
    grid = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-grid")
    ticks = [t.text or "" for t in grid.iter(f"{SVG}text")]
    assert ticks == ["0", "1", "2", "3"]


def test_large_counts_are_written_in_wan():
    root = parse(line_chart({"a": [12_000, 30_000]}, DAYS[:2], title="t"))
    assert "3万" in texts(root)


def _contrast(colour: str) -> float:
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


@pytest.mark.parametrize("colour", PALETTE)
def test_every_series_colour_has_3_to_1_contrast_on_white(colour):
    assert _contrast(colour) >= 3.0


def test_lines_differ_by_marker_and_dash_not_only_by_colour():
    root = parse(line_chart({"a": [1, 2], "b": [2, 1], "c": [1, 1]}, DAYS[:2], title="t"))
    paths = [series_elements(root, k)[0] for k in range(3)]
    markers = [series_elements(root, k)[1].tag for k in range(3)]
    assert len({p.get("stroke-dasharray") for p in paths}) == 3
    assert len(set(markers)) == 3


def test_colours_can_be_chosen_per_series():
    root = parse(stacked_bar_chart({"答": [1], "无": [1]}, ["x"], title="t", colors=[PALETTE[0], PALETTE[1]]))
    assert series_elements(root, 1)[0].get("fill") == PALETTE[1]


# -- refused input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"series": {"网页": [1, 2]}, "labels": DAYS[:3]}, "series '网页' has 2 values for 3 labels"),
        ({"series": {"网页": [1, -2]}, "labels": DAYS[:2]}, "has -2 at '11月21日'"),
        ({"series": {"a": [1]}, "labels": ["x"], "colors": ["red"]}, "not of the form #rrggbb"),
        ({"series": {"a": [1]}, "labels": ["x"], "colors": ['#000000" onload="x']}, "not of the form"),
        ({"series": {"a": [1], "b": [1]}, "labels": ["x"], "colors": ["#000000"]}, "one colour per series"),
        ({"series": {"a": [1]}, "labels": ["x"], "title": "  "}, "needs a title"),
        ({"series": {"a": [1]}, "labels": ["x"], "width": 10}, "width must be an int >= 160"),
    ],
)
@pytest.mark.parametrize("chart", KINDS)
def test_bad_input_is_refused_with_what_to_fix(chart, kwargs, message):
    kwargs = {"title": "t", **kwargs}
    with pytest.raises(ValueError, match=message):
        chart(**kwargs)


# -- data table --------------------------------------------------------------------


def test_the_data_table_gives_the_same_numbers_with_headers_for_screen_readers():
    html = data_table({"网页": [3, 5], "热线": [1, 0]}, DAYS[:2], caption="每日咨询量", totals=True)
    root = ET.fromstring(str(html))
    assert root.tag == "table" and root.find("caption").text == "每日咨询量"  # type: ignore[union-attr]
    assert [(th.text, th.get("scope")) for th in root.iter("th")] == [
        ("日期", "col"),
        ("网页", "col"),
        ("热线", "col"),
        ("11月20日", "row"),
        ("11月21日", "row"),
        ("合计", "row"),
    ]
    assert [td.text for td in root.iter("td")] == ["3", "1", "5", "0", "8", "1"]


def test_the_data_table_escapes_and_formats_percentages():
    html = data_table({HOSTILE: [0.125]}, [HOSTILE], caption=HOSTILE, label_header="问题", percent=True)
    assert "<script" not in html
    root = ET.fromstring(str(html))
    assert root.find("caption").text == HOSTILE  # type: ignore[union-attr]
    assert [td.text for td in root.iter("td")] == ["12.5%"]


@pytest.mark.parametrize(("series", "labels"), [({}, []), ({}, DAYS)])
def test_an_empty_data_table_says_no_data(series, labels):
    root = ET.fromstring(str(data_table(series, labels, caption="每日咨询量", totals=True)))
    assert [td.text for td in root.iter("td")] == [NO_DATA]
    assert len(list(root.iter("tr"))) == 2
