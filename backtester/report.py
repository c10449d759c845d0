"""report.html: one self-contained page (plotly.js inlined, nothing fetched from the network):
the run's settings (data, universe, period, costs, strategy) at the top, the equity curve and
drawdown, the rolling six-month Sharpe ratio, monthly returns and the worst drawdowns, price,
z-score and trades of every traded symbol (a menu, most traded first), the statistics, and for
sweeps and walk-forward splits a ranked, filterable table and a heatmap centred at zero (of the
out-of-sample Sharpe when the run has a split)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backtester.engine import Result
from backtester.plotdata import MAX_POINTS, envelope, envelope_rows
from backtester.plotly_html import chart_html, library_html, typed
from backtester.stats import drawdown
from backtester.tearsheet import (
    ROLLING_SESSIONS,
    monthly_returns,
    rolling_sharpe,
    worst_drawdowns,
)
from signal_generator import EXIT_CODES, Thresholds
from state_files import atomic_write_text

if TYPE_CHECKING:  # a sweep's grid; a report without one does not import pandas
    import pandas as pd

TOP_SYMBOLS = None  # every traded symbol is in the menu
_PERCENT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "exposure",
            "win_rate"}
_LABELS = {
    "start": "Start", "end": "End", "sessions": "Sessions",
    "starting_equity_usd": "Starting equity ($)", "final_equity_usd": "Final equity ($)",
    "total_return": "Total return", "cagr": "CAGR", "annual_volatility": "Annual volatility",
    "sharpe": "Sharpe (daily, rf=0)", "max_drawdown": "Max drawdown",
    "max_drawdown_duration_days": "Max drawdown duration (days)",
    "exposure": "Days with a position (share of sessions)",
    "trades": "Trades", "win_rate": "Win rate", "avg_holding_days": "Avg holding (days)",
    "median_holding_days": "Median holding (days)", "total_pnl_usd": "Total P&L ($)",
    "avg_pnl_usd": "Avg P&L per trade ($)",
    "market_benchmark": "Market benchmark",
    "market_benchmark_total_return": "Market benchmark: total return",
    "market_benchmark_cagr": "Market benchmark: CAGR",
    "market_excess_total_return": "Excess total return over the market",
    "market_beta": "Beta to the market (daily)", "market_correlation": "Correlation with the "
    "market (daily)", "dividends_usd": "Dividends credited ($; negative: charged on shorts)",
}


def format_stat(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key in _PERCENT:
        return f"{value * 100:.2f}%"
    if isinstance(value, float):
        return f"{value:,.2f}" if key.endswith("_usd") else f"{value:.3f}"
    if isinstance(value, int) and key.endswith("_usd"):
        return f"{value:,}"
    return str(value)


def stat_rows(stats: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, label, formatted value) per statistic; exit reasons one row each."""
    rows = []
    for key, value in stats.items():
        if key == "exit_reasons":
            rows += [(f"exit:{r}", f"Exits: {r}", str(n)) for r, n in value.items()]
        elif key == "orders":
            rows += [(f"orders:{purpose}", f"Orders ({purpose}): filled / placed, shortfall",
                      f"{s['filled']} / {s['placed']} ({format_stat('win_rate', s['fill_rate'])})"
                      f", {format_stat('bps', s['shortfall_bps'])} bps")
                     for purpose, s in value.items()]
        elif key == "days_held_past_limit":
            rows.append((key, "Days held past the limit (mean / max)",
                         f"{format_stat(key, value['mean'])} / {format_stat(key, value['max'])}"))
        else:
            rows.append((key, _LABELS.get(key, key), format_stat(key, value)))
    return rows


def stats_table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """An HTML table with one column per named statistics dict (side by side)."""
    names = list(columns)
    keyed = {name: {k: v for k, _, v in stat_rows(columns[name])} for name in names}
    labels = {k: label for name in names for k, label, _ in stat_rows(columns[name])}
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{html.escape(keyed[n].get(k, ''))}</td>" for n in names) + "</tr>"
        for k, label in labels.items())
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _two_rows(top: float, spacing: float = 0.04) -> dict[str, Any]:
    """Two rows sharing their x axis (dates), the top one `top` of the height: the layout of
    plotly's make_subplots(rows=2, shared_xaxes=True)."""
    bottom = round((1.0 - spacing) * (1.0 - top), 12)
    return {"xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2",
                      "showticklabels": False},
            "yaxis": {"anchor": "x", "domain": [bottom + spacing, 1.0]},
            "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0]},
            "yaxis2": {"anchor": "x2", "domain": [0.0, bottom]}}


def _day_text(result: Result) -> np.ndarray:
    return np.datetime_as_string(np.array(result.days, dtype="datetime64[D]"))


def _hline(y: float, axes: str = "", dash: str | None = None) -> dict[str, Any]:
    """A horizontal line across a chart at `y` (of the y axis `axes`: "" or "2")."""
    line = {"color": "gray", "width": 0.8, **({"dash": dash} if dash else {})}
    return {"type": "line", "line": line, "x0": 0, "x1": 1, "xref": f"x{axes} domain",
            "y0": y, "y1": y, "yref": f"y{axes}"}


def equity_chart(result: Result) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """plotly.js data and layout: equity at each close over its drawdown."""
    days = _day_text(result)
    dd = drawdown(result.equity, result.settings.starting_cash) * 100
    data = [{"type": "scatter", **_line(days, result.equity), "name": "equity ($)",
             "line": {"width": 1.4}, "xaxis": "x", "yaxis": "y"},
            {"type": "scatter", **_line(days, dd), "name": "drawdown (%)", "fill": "tozeroy",
             "line": {"color": "firebrick", "width": 1}, "xaxis": "x2", "yaxis": "y2"}]
    layout = _two_rows(0.7)
    layout["yaxis"]["title"] = {"text": "equity ($)"}
    layout["yaxis2"]["title"] = {"text": "drawdown (%)"}
    layout.update(title={"text": "Equity at each close and drawdown"}, height=520,
                  margin={"t": 50, "b": 30}, legend={"orientation": "h"})
    return data, layout


def most_traded(result: Result, count: int | None = TOP_SYMBOLS) -> list[int]:
    """Every traded symbol (or the `count` most traded), most trades first."""
    counts = np.bincount(result.trades.symbol, minlength=len(result.symbols))
    order = sorted(np.flatnonzero(counts), key=lambda j: (-counts[j], result.symbols[j]))
    return [int(j) for j in order[:count]]


SYMBOL_TITLE = ": noon price, z-score and trades"
_COLUMNS_AT_ONCE = 256  # symbols whose lines are thinned together (bounds the memory used)
# Points of all the menu's price lines together (and of its z-score lines): with more symbols
# than SYMBOL_POINTS / MAX_POINTS, each symbol's lines get fewer points (never below
# MIN_SYMBOL_POINTS), so that the page stays a size a browser opens; the extremes stay.
SYMBOL_POINTS = 1_000_000
MIN_SYMBOL_POINTS = 200


def symbol_points(symbols: int) -> int:
    """The most points a line of the symbol chart has, with `symbols` in the menu."""
    return max(MIN_SYMBOL_POINTS, min(MAX_POINTS, SYMBOL_POINTS // max(symbols, 1)))


def symbols_chart(result: Result, symbols: Sequence[int]) -> tuple[dict[str, Any],
                                                                   dict[str, Any]]:
    """Price the bot saw at noon, its z-score and the trades, one symbol at a time (a menu).

    The page carries each symbol's numbers once, compactly (`symbols_data`); its script
    builds the five traces of the symbol chosen and the menu's buttons from them, so that the
    page's size and the time to write it follow the points drawn, not a trace per symbol."""
    layout = _two_rows(0.6)
    layout["yaxis"]["title"] = {"text": "price ($)"}
    layout["yaxis2"]["title"] = {"text": "z-score"}
    t = Thresholds.from_config(result.config)
    layout.update(
        title={"text": f"{result.symbols[symbols[0]]}{SYMBOL_TITLE}"}, height=560,
        shapes=[_hline(level, "2", dash) for level, dash in (
            (t.long_entry_z, "dash"), (t.short_entry_z, "dash"), (t.long_exit_z, "dot"),
            (t.short_exit_z, "dot"), (t.long_stop_z, "dashdot"), (t.short_stop_z, "dashdot"))],
        updatemenus=[{"buttons": [], "x": 1.0, "xanchor": "right", "y": 1.12,
                      "yanchor": "top"}],
        margin={"t": 70, "b": 30}, legend={"orientation": "h"})
    return symbols_data(result, symbols), layout


def symbols_data(result: Result, symbols: Sequence[int]) -> dict[str, Any]:
    """Per symbol of the menu, in its order: the points of its price and z-score lines
    (backtester.plotdata) and its trades. Arrays of all symbols are concatenated; `start[n]`
    to `start[n + 1]` are symbol n's. Points are session numbers into `days`."""
    t = result.trades
    lines: dict[str, dict[str, Any]] = {}
    chosen = np.asarray(symbols, dtype=np.int64)
    for name, values in (("price", result.prices), ("z", result.z)):
        counts, at = [], []
        for part in np.array_split(chosen, -(-len(chosen) // _COLUMNS_AT_ONCE)):
            starts, rows = envelope_rows(values.T[part], symbol_points(len(symbols)))
            counts.append(np.diff(starts))
            at.append(rows)
        count, row = np.concatenate(counts), np.concatenate(at)
        lines[name] = {"start": typed(_starts(count.tolist()), "i4"), "at": typed(row, "i4"),
                       "value": typed(values[row, np.repeat(chosen, count)])}
    rank = np.full(len(result.symbols), len(symbols))
    rank[np.asarray(symbols, dtype=np.int64)] = np.arange(len(symbols))
    order = np.argsort(rank[t.symbol], kind="stable")  # by symbol, in trade order within
    counts = np.bincount(rank[t.symbol], minlength=len(symbols) + 1)[:len(symbols)]
    reasons = np.array([str(EXIT_CODES.get(c, "")) for c in range(max(EXIT_CODES) + 1)],
                       dtype=object)
    pnl = [f"{v:.2f}" for v in t.pnl_usd[order].tolist()]
    exit_text = (reasons[t.exit_reason[order]] + ", P&L $" + np.array(pnl, dtype=object))
    return {"days": _day_text(result).tolist(),
            "names": [result.symbols[j] for j in symbols], "title": SYMBOL_TITLE,
            **lines,
            "trades": {"start": typed(_starts(counts.tolist()), "i4"),
                       "long": typed(t.is_long[order], "u1"),
                       "entry_at": typed(t.entry_session[order], "i4"),
                       "entry_price": typed(t.entry_price[order]),
                       "exit_at": typed(t.exit_session[order], "i4"),
                       "exit_price": typed(t.exit_price[order]),
                       "exit_text": exit_text.tolist()}}


def _starts(lengths: Any) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.fromiter(lengths, dtype=np.int64))])


# Builds the symbol chart's traces and menu from symbols_data (`data` above it). A button's
# update is the whole of a symbol's five traces and its title, as plotly's "update" method
# applies it; typed arrays are decoded once and each symbol's points are views into them.
SYMBOLS_JS = """
var d = data, marker = {size: 9, line: {width: 0.5}};
function decode(a) {
  var text = atob(a.bdata), bytes = new Uint8Array(text.length);
  for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
  return new ({f8: Float64Array, i4: Int32Array, u1: Uint8Array}[a.dtype])(bytes.buffer);
}
function arrays(part) {
  var out = {};
  Object.keys(part).forEach(function (k) { out[k] = part[k].bdata ? decode(part[k]) : part[k]; });
  return out;
}
var price = arrays(d.price), z = arrays(d.z), tr = arrays(d.trades);
function dates(at) { return Array.from(at, function (i) { return d.days[i]; }); }
function update(n) {
  var p = [price.start[n], price.start[n + 1]], q = [z.start[n], z.start[n + 1]];
  var longs = {x: [], y: []}, shorts = {x: [], y: []}, exits = {x: [], y: [], text: []};
  for (var i = tr.start[n]; i < tr.start[n + 1]; i++) {
    var entry = tr.long[i] ? longs : shorts;
    entry.x.push(d.days[tr.entry_at[i]]); entry.y.push(tr.entry_price[i]);
    exits.x.push(d.days[tr.exit_at[i]]); exits.y.push(tr.exit_price[i]);
    exits.text.push(tr.exit_text[i]);
  }
  return [{x: [dates(price.at.subarray(p[0], p[1])), longs.x, shorts.x, exits.x,
               dates(z.at.subarray(q[0], q[1]))],
           y: [price.value.subarray(p[0], p[1]), longs.y, shorts.y, exits.y,
               z.value.subarray(q[0], q[1])],
           text: [[], [], [], exits.text, []]},
          {"title.text": d.names[n] + d.title}];
}
var first = update(0)[0];
data = [
  {type: 'scatter', name: 'price at noon', line: {color: '#444', width: 1}},
  {type: 'scatter', mode: 'markers', name: 'long entry',
   marker: Object.assign({symbol: 'triangle-up', color: 'green'}, marker)},
  {type: 'scatter', mode: 'markers', name: 'short entry',
   marker: Object.assign({symbol: 'triangle-down', color: 'red'}, marker)},
  {type: 'scatter', mode: 'markers', name: 'exit',
   marker: Object.assign({symbol: 'x', color: 'royalblue'}, marker)},
  {type: 'scatter', name: 'z-score', line: {color: 'darkorange', width: 1}, xaxis: 'x2',
   yaxis: 'y2'}].map(function (trace, k) {
  return Object.assign({x: first.x[k], y: first.y[k], text: first.text[k], xaxis: 'x',
                        yaxis: 'y'}, trace);
});
layout.updatemenus[0].buttons = d.names.map(function (name, n) {
  return {label: name, method: 'update', args: update(n)};
});
"""


def _line(days: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """x and y of a line, with its extremes only when long (backtester.plotdata)."""
    keep = envelope(values)
    return {"x": days[keep].tolist(), "y": typed(values[keep])}


# ColorBrewer's RdYlGn, as plotly's Python package spells it out (plotly.js has no such name).
RED_YELLOW_GREEN = [[i / 10, colour] for i, colour in enumerate((
    "rgb(165,0,38)", "rgb(215,48,39)", "rgb(244,109,67)", "rgb(253,174,97)", "rgb(254,224,139)",
    "rgb(255,255,191)", "rgb(217,239,139)", "rgb(166,217,106)", "rgb(102,189,99)",
    "rgb(26,152,80)", "rgb(0,104,55)"))]


def heatmap_chart(grid: pd.DataFrame, x: str, y: str,
                  metric: str = "sharpe") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`metric` over the first two grid parameters; with more parameters, each cell shows
    the best value over the others. The colours are centred at zero: a loss is red however
    the grid's values spread."""
    table = grid.pivot_table(index=y, columns=x, values=metric, aggfunc="max")
    values = table.to_numpy(dtype=float)
    data = [{"type": "heatmap", "z": [[v if v == v else None for v in row]
                                      for row in values.tolist()],
             "x": [str(v) for v in table.columns], "y": [str(v) for v in table.index],
             "colorscale": RED_YELLOW_GREEN, "zmid": 0,
             "text": [[f"{v:.2f}" for v in row] for row in values.tolist()],
             "texttemplate": "%{text}",
             "colorbar": {"title": {"text": _humanise(metric)}}}]
    layout = {"title": {"text": f"Sweep: {_humanise(metric)} by {x} and {y}"},
              "xaxis": {"title": {"text": x}}, "yaxis": {"title": {"text": y}}, "height": 480}
    return data, layout


def sweep_metric(grid: pd.DataFrame) -> str:
    """What a sweep is ranked by: the out-of-sample Sharpe when the run has a split (the
    in-sample figure is what the parameters were chosen on), else the Sharpe."""
    return "out_of_sample_sharpe" if "out_of_sample_sharpe" in grid.columns else "sharpe"


def rolling_sharpe_chart(result: Result) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    sharpe = rolling_sharpe(result.equity, result.settings.starting_cash)
    data = [{"type": "scatter", "x": _day_text(result).tolist(), "y": typed(sharpe),
             "name": "Sharpe, last 126 sessions", "line": {"width": 1.2}}]
    layout = {"shapes": [_hline(0.0)],
              "title": {"text": f"Rolling Sharpe over {ROLLING_SESSIONS} sessions "
                                "(about 6 months; daily returns, rf=0, annualised)"},
              "height": 320, "margin": {"t": 50, "b": 30}}
    return data, layout


def settings_table(parameters: Mapping[str, Any]) -> str:
    """The run's inputs, first on the page: two saved reports can be told apart."""
    rows = []
    for key, value in parameters.items():
        if key == "symbols":
            value = f"{len(value)}: {', '.join(value)}"
        rows.append(f"<tr><th>{html.escape(_humanise(key))}</th>"
                    f"<td class='left'>{html.escape(_setting(value))}</td></tr>")
    return f"<table class='settings'>{''.join(rows)}</table>"


def monthly_table(result: Result) -> str:
    table = monthly_returns(result.days, result.equity, result.settings.starting_cash)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec", "Year"]
    head = "".join(f"<th>{m}</th>" for m in months)
    body = ""
    for year, row in zip(table.years, table.table, strict=True):
        cells = "".join(_return_cell(v) for v in row)
        body += f"<tr><th>{year}</th>{cells}</tr>"
    return f"<div class='scroll'><table class='monthly'><tr><th></th>{head}</tr>{body}" \
        "</table></div>"


def drawdowns_table(result: Result) -> str:
    worst = worst_drawdowns(result.days, result.equity, result.settings.starting_cash)
    if not worst:
        return "<p>Equity never fell below its peak.</p>"
    rows = "".join(
        f"<tr><td>{i}</td><td>{d.depth * 100:.2f}%</td><td>{d.peak}</td><td>{d.trough}</td>"
        f"<td>{d.recovery or 'not recovered'}</td><td>{d.days}</td></tr>"
        for i, d in enumerate(worst, start=1))
    return ("<div class='scroll'><table><tr><th>#</th><th>depth</th><th>peak</th>"
            "<th>trough</th><th>recovered</th><th>days</th></tr>" + rows + "</table></div>")


def sweep_table(grid: pd.DataFrame, axes: Sequence[str]) -> str:
    """The sweep ranked best first by `sweep_metric`, numbers formatted, with a filter."""
    metric = sweep_metric(grid)
    ranked = grid.sort_values(metric, ascending=False, na_position="last", kind="stable")
    columns = [*axes, *[c for c in ranked.columns if c not in axes]]
    head = "<th>rank</th>" + "".join(f"<th>{html.escape(_humanise(c))}</th>" for c in columns)
    cells = {c: [_setting(v) if c in axes else format_stat(_stat_key(c), v)
                 for v in ranked[c].tolist()] for c in columns}  # per column: its own type
    body = "".join(
        f"<tr><td>{rank}</td>" + "".join(f"<td>{html.escape(cells[c][i])}</td>"
                                         for c in columns) + "</tr>"
        for i, rank in enumerate(range(1, len(ranked) + 1)))
    return (f"<p>{len(ranked)} runs, best first by {html.escape(_humanise(metric))}. "
            "<label>Filter: <input id='sweep-filter' type='search' "
            "placeholder='e.g. 1.5 or 30'></label></p>"
            f"<div class='scroll'><table id='sweep'><tr>{head}</tr>{body}</table></div>"
            f"<script>{_FILTER_JS}</script>")


_FILTER_JS = """
document.getElementById('sweep-filter').addEventListener('input', function (e) {
  var words = e.target.value.toLowerCase().split(/\\s+/).filter(Boolean);
  document.querySelectorAll('#sweep tr').forEach(function (row, i) {
    if (i === 0) { return; }
    var text = row.textContent.toLowerCase();
    row.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? '' : 'none';
  });
});
"""


def _stat_key(column: str) -> str:
    for prefix in ("in_sample_", "out_of_sample_"):
        if column.startswith(prefix):
            return column[len(prefix):]
    return column


def _humanise(key: str) -> str:
    for prefix, name in (("in_sample_", "in-sample "), ("out_of_sample_", "out-of-sample ")):
        if key.startswith(prefix):
            return name + _humanise(key[len(prefix):])
    return _LABELS.get(key, key.replace("_", " "))


def _setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,g}"
    return str(value)


def _return_cell(value: float) -> str:
    if value != value:  # NaN: no session that month
        return "<td></td>"
    colour = "#1b5e20" if value > 0 else "#b71c1c" if value < 0 else "#333"
    return f"<td style='color:{colour}'>{value * 100:+.2f}%</td>"


def result_charts(result: Result) -> list[str]:
    """The charts of the run itself (equity, rolling Sharpe, the symbols when any traded), the
    most of a page's work; a sweep's command makes them while its last jobs run."""
    charts = [chart_html("chart-equity", *equity_chart(result)),
              chart_html("chart-rolling-sharpe", *rolling_sharpe_chart(result))]
    traded = most_traded(result)
    if traded:
        charts.append(chart_html("chart-symbols", *symbols_chart(result, traded),
                                 script=SYMBOLS_JS))
    return charts


def build_report(result: Result, stats: Mapping[str, Any], *, title: str,
                 periods: Mapping[str, Mapping[str, Any]] | None = None,
                 grid: pd.DataFrame | None = None, grid_axes: Sequence[str] = (),
                 parameters: Mapping[str, Any] | None = None,
                 charts: Sequence[str] | None = None) -> str:
    """The whole page. `periods`: statistics side by side (in-sample, out-of-sample);
    `parameters`: the run's inputs, shown first; `charts`: `result_charts(result)`, when the
    caller made them already."""
    plots = list(result_charts(result) if charts is None else charts)
    traded = most_traded(result)
    # plotly.js goes in once, inline, before the first chart: the file works offline.
    plots[0] = library_html() + "\n" + plots[0]
    sections = [f"<h1>{html.escape(title)}</h1>"]
    if parameters:
        sections += ["<h2>Settings</h2>", settings_table(parameters)]
    sections += [plots[0], plots[1], "<h2>Statistics</h2>", stats_table({"backtest": stats})]
    if periods:
        sections += ["<h2>Walk-forward: in-sample and out-of-sample</h2>",
                     stats_table(periods)]
    sections += ["<h2>Monthly returns</h2>", monthly_table(result),
                 "<h2>Worst drawdowns</h2>", drawdowns_table(result)]
    if traded:
        points = symbol_points(len(traded))
        thinned = (f" With this many, each symbol's lines have at most {points:,} points (of "
                   f"{len(result.sessions):,} sessions), its lowest and highest of each span "
                   "kept; every trade is drawn." if len(result.sessions) > points else "")
        sections += [f"<h2>Symbols</h2><p>All {len(traded)} traded symbols are in the menu, "
                     f"most trades first ({len(result.symbols)} in the universe).{thinned}</p>",
                     plots[2]]
    sections += plots[3:]
    if grid is not None:
        sections += sweep_sections(grid, grid_axes)
    return _PAGE.format(title=html.escape(title), body="\n".join(sections))


def sweep_sections(grid: pd.DataFrame, grid_axes: Sequence[str]) -> list[str]:
    """The sweep's part of the page, its last: the heatmap (with one or more axes) and the
    ranked table."""
    metric = sweep_metric(grid)
    sections = []
    if len(grid_axes) >= 2:
        sections.append(chart_html("chart-sweep", *heatmap_chart(grid, grid_axes[0],
                                                                  grid_axes[1], metric)))
    elif len(grid_axes) == 1:
        sections.append(chart_html("chart-sweep", *heatmap_chart(grid.assign(_=""),
                                                                  grid_axes[0], "_", metric)))
    return [*sections, "<h2>Sweep</h2>", sweep_table(grid, grid_axes)]


def with_sweep(page: str, grid: pd.DataFrame, grid_axes: Sequence[str]) -> str:
    """`page`, built without a grid, with the sweep's part added at its end: the page
    `build_report` gives with that grid."""
    return page_start(page) + sweep_end(grid, grid_axes)


def page_start(page: str) -> str:
    """A page of build_report without a grid, but for its end: a sweep's command writes it
    while its last jobs run, and `sweep_end` once they have all ended."""
    if not page.endswith(_PAGE_END):
        raise ValueError("not a page of build_report")
    return page[:len(page) - len(_PAGE_END)]


def sweep_end(grid: pd.DataFrame, grid_axes: Sequence[str]) -> str:
    """What follows `page_start`: the sweep's part and the page's end."""
    return "\n" + "\n".join(sweep_sections(grid, grid_axes)) + _PAGE_END


def write_report(path: Path, page: str) -> None:
    atomic_write_text(path, page)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 0.8em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }}
tr > th:first-child, td.left {{ text-align: left; }}
table.settings td {{ overflow-wrap: anywhere; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
.plotly-graph-div {{ max-width: 100%; }}
@media (max-width: 600px) {{ table {{ font-size: 0.75em; }} th, td {{ padding: 0.2em 0.4em; }} }}
</style></head>
<body>
{body}
</body></html>
"""
_PAGE_END = "\n</body></html>\n"
