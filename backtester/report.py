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
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtester.engine import Result
from backtester.plotdata import envelope
from backtester.stats import drawdown
from backtester.tearsheet import (
    ROLLING_SESSIONS,
    monthly_returns,
    rolling_sharpe,
    worst_drawdowns,
)
from signal_generator import EXIT_CODES, Thresholds
from state_files import atomic_write_text

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


def equity_figure(result: Result) -> go.Figure:
    days = pd.to_datetime([d.isoformat() for d in result.days])
    dd = drawdown(result.equity, result.settings.starting_cash) * 100
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.04)
    fig.add_trace(go.Scatter(**_line(days, result.equity), name="equity ($)", line_width=1.4),
                  row=1, col=1)
    fig.add_trace(go.Scatter(**_line(days, dd), name="drawdown (%)", fill="tozeroy",
                             line=dict(color="firebrick", width=1)), row=2, col=1)
    fig.update_yaxes(title_text="equity ($)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown (%)", row=2, col=1)
    fig.update_layout(title="Equity at each close and drawdown", height=520,
                      margin=dict(t=50, b=30), legend=dict(orientation="h"))
    return fig


def most_traded(result: Result, count: int | None = TOP_SYMBOLS) -> list[int]:
    """Every traded symbol (or the `count` most traded), most trades first."""
    counts = np.bincount(result.trades.symbol, minlength=len(result.symbols))
    order = sorted(np.flatnonzero(counts), key=lambda j: (-counts[j], result.symbols[j]))
    return [int(j) for j in order[:count]]


def symbols_figure(result: Result, symbols: Sequence[int]) -> go.Figure:
    """Price the bot saw at noon, its z-score and the trades, one symbol at a time (menu)."""
    days = pd.to_datetime([d.isoformat() for d in result.days])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4],
                        vertical_spacing=0.04)
    per_symbol = 0
    for n, j in enumerate(symbols):
        traces = _symbol_traces(result, days, j)
        per_symbol = len(traces)
        for trace, row in traces:
            trace.visible = n == 0
            fig.add_trace(trace, row=row, col=1)
    _threshold_lines(fig, Thresholds.from_config(result.config))
    buttons = [dict(label=result.symbols[j], method="update",
                    args=[{"visible": [k // per_symbol == n
                                       for k in range(per_symbol * len(symbols))]},
                          # "title.text": plotly's layout API (a bare "title" string is
                          # dropped by current plotly.js, and the chart lost its title)
                          {"title.text": f"{result.symbols[j]}: noon price, z-score and "
                                         "trades"}])
               for n, j in enumerate(symbols)]
    fig.update_layout(
        title=dict(text=f"{result.symbols[symbols[0]]}: noon price, z-score and trades"),
        height=560,
        updatemenus=[dict(buttons=buttons, x=1.0, xanchor="right", y=1.12, yanchor="top")],
        margin=dict(t=70, b=30), legend=dict(orientation="h"))
    fig.update_yaxes(title_text="price ($)", row=1, col=1)
    fig.update_yaxes(title_text="z-score", row=2, col=1)
    return fig


def _symbol_traces(result: Result, days: pd.DatetimeIndex, j: int) -> list[tuple[Any, int]]:
    t = result.trades
    mine = t.symbol == j
    entry_days, exit_days = days[t.entry_session[mine]], days[t.exit_session[mine]]
    long_ = t.is_long[mine]
    exit_text = [f"{EXIT_CODES[int(code)]}, P&L ${pnl:.2f}"
                 for code, pnl in zip(t.exit_reason[mine], t.pnl_usd[mine], strict=True)]
    marker = dict(size=9, line_width=0.5)
    return [
        (go.Scatter(**_line(days, result.prices[:, j]), name="price at noon",
                    line=dict(color="#444", width=1)), 1),
        (go.Scatter(x=entry_days[long_], y=t.entry_price[mine][long_], mode="markers",
                    name="long entry", marker=dict(symbol="triangle-up", color="green",
                                                   **marker)), 1),
        (go.Scatter(x=entry_days[~long_], y=t.entry_price[mine][~long_], mode="markers",
                    name="short entry", marker=dict(symbol="triangle-down", color="red",
                                                    **marker)), 1),
        (go.Scatter(x=exit_days, y=t.exit_price[mine], mode="markers", name="exit",
                    text=exit_text, marker=dict(symbol="x", color="royalblue", **marker)), 1),
        (go.Scatter(**_line(days, result.z[:, j]), name="z-score",
                    line=dict(color="darkorange", width=1)), 2),
    ]


def _line(days: pd.DatetimeIndex, values: np.ndarray) -> dict[str, Any]:
    """x and y of a line, with its extremes only when long (backtester.plotdata)."""
    keep = envelope(values)
    return {"x": days[keep], "y": values[keep]}


def _threshold_lines(fig: go.Figure, t: Thresholds) -> None:
    for level, dash in ((t.long_entry_z, "dash"), (t.short_entry_z, "dash"),
                        (t.long_exit_z, "dot"), (t.short_exit_z, "dot"),
                        (t.long_stop_z, "dashdot"), (t.short_stop_z, "dashdot")):
        fig.add_hline(y=level, line=dict(color="gray", width=0.8, dash=dash), row=2, col=1)


def heatmap_figure(grid: pd.DataFrame, x: str, y: str, metric: str = "sharpe") -> go.Figure:
    """`metric` over the first two grid parameters; with more parameters, each cell shows
    the best value over the others. The colours are centred at zero: a loss is red however
    the grid's values spread."""
    table = grid.pivot_table(index=y, columns=x, values=metric, aggfunc="max")
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[str(v) for v in table.columns],
                               y=[str(v) for v in table.index], colorscale="RdYlGn", zmid=0,
                               text=np.vectorize(lambda v: f"{v:.2f}")(table.to_numpy()),
                               texttemplate="%{text}",
                               colorbar=dict(title=dict(text=_humanise(metric)))))
    fig.update_layout(title=dict(text=f"Sweep: {_humanise(metric)} by {x} and {y}"),
                      xaxis_title=x, yaxis_title=y, height=480)
    return fig


def sweep_metric(grid: pd.DataFrame) -> str:
    """What a sweep is ranked by: the out-of-sample Sharpe when the run has a split (the
    in-sample figure is what the parameters were chosen on), else the Sharpe."""
    return "out_of_sample_sharpe" if "out_of_sample_sharpe" in grid.columns else "sharpe"


def rolling_sharpe_figure(result: Result) -> go.Figure:
    days = pd.to_datetime([d.isoformat() for d in result.days])
    sharpe = rolling_sharpe(result.equity, result.settings.starting_cash)
    fig = go.Figure(go.Scatter(x=days, y=sharpe, name="Sharpe, last 126 sessions",
                               line=dict(width=1.2)))
    fig.add_hline(y=0, line=dict(color="gray", width=0.8))
    fig.update_layout(title=dict(text=f"Rolling Sharpe over {ROLLING_SESSIONS} sessions "
                                      "(about 6 months; daily returns, rf=0, annualised)"),
                      height=320, margin=dict(t=50, b=30))
    return fig


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
    for year, row in table.iterrows():
        cells = "".join(_return_cell(v) for v in row.to_numpy())
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


def build_report(result: Result, stats: Mapping[str, Any], *, title: str,
                 periods: Mapping[str, Mapping[str, Any]] | None = None,
                 grid: pd.DataFrame | None = None, grid_axes: Sequence[str] = (),
                 parameters: Mapping[str, Any] | None = None) -> str:
    """The whole page. `periods`: statistics side by side (in-sample, out-of-sample);
    `parameters`: the run's inputs, shown first."""
    figures = [equity_figure(result), rolling_sharpe_figure(result)]
    traded = most_traded(result)
    if traded:
        figures.append(symbols_figure(result, traded))
    metric = sweep_metric(grid) if grid is not None else "sharpe"
    if grid is not None and len(grid_axes) >= 2:
        figures.append(heatmap_figure(grid, grid_axes[0], grid_axes[1], metric))
    elif grid is not None and len(grid_axes) == 1:
        figures.append(heatmap_figure(grid.assign(_=""), grid_axes[0], "_", metric))
    # plotly.js goes in once, inline, with the first figure: the file works offline.
    plots = [fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                         config={"responsive": True, "displaylogo": False})
             for i, fig in enumerate(figures)]
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
        sections += [f"<h2>Symbols</h2><p>All {len(traded)} traded symbols are in the menu, "
                     f"most trades first ({len(result.symbols)} in the universe).</p>",
                     plots[2]]
    sections += plots[3:]
    if grid is not None:
        sections += ["<h2>Sweep</h2>", sweep_table(grid, grid_axes)]
    return _PAGE.format(title=html.escape(title), body="\n".join(sections))


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
