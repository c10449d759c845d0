"""Plotly charts in a page without plotly's Python figure objects: a chart is a plain dict
(plotly.js's own `data` and `layout`), written as JSON for `Plotly.newPlot`, its long number
arrays as plotly.js typed arrays (`{"dtype": "f8", "bdata": base64}`, the form plotly's Python
package writes too), exact to the last bit.

Building and validating plotly's Python objects cost seconds per hundred traces and copied every
array several times; the page only needs the JSON. plotly.js itself is read from the installed
plotly package (the same file its `to_html` inlines), and the package is not imported.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

CONFIG = {"responsive": True, "displaylogo": False}


def typed(values: np.ndarray, dtype: str = "f8") -> dict[str, str]:
    """A 1-d array as a plotly.js typed array (little-endian; NaN stays NaN, a gap)."""
    array = np.ascontiguousarray(values, dtype="<" + dtype)
    return {"dtype": dtype, "bdata": _Base64(base64.b64encode(array.tobytes()).decode("ascii"))}


class _Base64(str):
    """Text that is base64 by construction (`typed`), which script_json writes unescaped."""


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no "</" can close it early).

    Typed arrays' base64 (megabytes at millions of bars) needs neither JSON's escapes nor the
    "</" guard (its alphabet is letters, digits, "+", "/" and "="): each is left out of the
    encoding, as a one-character stand-in, and put back into the text as it is, which is the
    text json.dumps would write."""
    payloads: list[str] = []
    small = _without_payloads(value, payloads)
    text = json.dumps(small, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    if not payloads:
        return text
    parts = text.split(_STAND_IN_JSON)
    if len(parts) != len(payloads) + 1:  # the data itself holds the stand-in: no shortcut
        return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return parts[0] + "".join(f'"{payload}"{part}'
                              for payload, part in zip(payloads, parts[1:], strict=True))


_STAND_IN = "\x00"
_STAND_IN_JSON = json.dumps(_STAND_IN)


def _without_payloads(value: Any, payloads: list[str]) -> Any:
    """`value` with each typed array's base64 (a _Base64) replaced by _STAND_IN, in the order
    json.dumps writes them (dicts in their order, lists in theirs). Lists of plain values are
    not walked: the first item tells (a list that mixes keeps its payloads, still correct)."""
    if isinstance(value, dict):
        if isinstance(value.get("bdata"), _Base64):
            payloads.append(value["bdata"])
            return {key: _STAND_IN if key == "bdata" else item for key, item in value.items()}
        return {key: _without_payloads(item, payloads) for key, item in value.items()}
    if isinstance(value, list | tuple) and value and isinstance(value[0], dict | list | tuple):
        return [_without_payloads(item, payloads) for item in value]
    return value


def _package_data() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the report needs the plotly package for plotly.js: "
                           "pip install -r requirements.txt")
    return Path(spec.origin).parent / "package_data"


@cache
def plotly_js() -> str:
    """plotly.js, minified, as the installed plotly package ships it."""
    return (_package_data() / "plotly.min.js").read_text(encoding="utf-8")


@cache
def template() -> dict[str, Any]:
    """The "plotly" template, which plotly's Python figures apply by default."""
    return json.loads((_package_data() / "templates" / "plotly.json").read_text(
        encoding="utf-8"))


def library_html() -> str:
    """plotly.js inline, once per page: the page draws its charts offline."""
    return ("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
            f"<script>{plotly_js()}</script>")


def chart_html(div_id: str, data: Any, layout: dict[str, Any], script: str = "") -> str:
    """A chart's div and the script that draws it: `Plotly.newPlot` of `data` (its traces)
    and `layout`. `script`, when given, is JavaScript run before drawing with `data` and
    `layout` in scope, which makes the traces from what `data` is then (see report.py)."""
    height = layout.get("height", 450)
    layout = {"template": template(), **layout}
    return (f'<div style="height:{height}px; width:100%;">'
            f'<div id="{div_id}" class="plotly-graph-div" style="height:100%; width:100%;">'
            f"</div></div>\n<script>(function () {{\n"
            f"var data = {script_json(data)};\nvar layout = {script_json(layout)};\n"
            f"{script}\nPlotly.newPlot({script_json(div_id)}, data, layout, "
            f"{script_json(CONFIG)});\n}})();</script>")
