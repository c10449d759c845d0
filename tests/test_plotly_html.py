"""backtester.plotly_html: charts as plotly.js JSON, exact numbers, safe inside a page."""

from __future__ import annotations

import base64
import json

import numpy as np

from backtester.plotly_html import chart_html, library_html, script_json, typed


def test_typed_arrays_carry_every_bit_and_nan():
    values = np.array([0.1, -2.5e-300, 1e300, np.nan, 123.4567, -0.0])
    encoded = typed(values)
    assert encoded["dtype"] == "f8"
    back = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype="<f8")
    assert back.tobytes() == values.tobytes()
    counts = typed(np.array([0, 7, 70_000]), "i4")
    assert np.frombuffer(base64.b64decode(counts["bdata"]), "<i4").tolist() == [0, 7, 70_000]


def test_text_cannot_close_the_script_it_is_in():
    text = script_json({"name": "</script><script>alert(1)</script>"})
    assert "</" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>"}


def test_a_chart_is_its_div_and_the_call_that_draws_it():
    page = chart_html("chart-x", [{"type": "scatter", "x": ["2024-01-02"], "y": [1.5]}],
                      {"height": 320, "title": {"text": "t"}})
    assert '<div style="height:320px; width:100%;">' in page
    assert '<div id="chart-x" class="plotly-graph-div"' in page
    assert 'Plotly.newPlot("chart-x", data, layout, {"responsive":true,' in page
    assert '"template":{"layout":{' in page  # plotly's default look, as its figures have
    assert library_html().count("plotly.js v") == 1  # the library itself, inline


def test_script_json_is_json_dumps_with_typed_arrays_spliced_in_as_they_are():
    def plain(value):
        return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")

    y = typed(np.array([0.5, np.nan, -1e-300]))
    traces = [{"type": "scatter", "x": ["2024-01-02", "</b>"], "y": y, "name": "a</script>"},
              {"y": typed(np.arange(70_000), "i4"), "nested": [[1, 2], {"z": y}]},
              ("tuple", typed(np.array([True, False]), "u1"))]
    assert script_json(traces) == plain(traces)
    assert json.loads(script_json(traces))[1]["nested"][1]["z"] == y
    # Data that itself holds the stand-in character is written the plain way.
    odd = {"names": ["\x00", "b"], "price": {"value": y}, "first": "\x00"}
    assert script_json(odd) == plain(odd)
    # A dict shaped like a typed array but not made by typed() is escaped as any text.
    forged = {"dtype": "f8", "bdata": '"</script>'}
    assert script_json(forged) == plain(forged) and "</" not in script_json(forged)
