"""The report pages in headless Chromium, as a person sees them at 1400 and 420 px: the status
line, no sideways scroll on a phone, every chart drawn, no console error, no network request.
"""

from __future__ import annotations

import csv
import json

import pytest

import report
import trading_bot
from backtester import cli
from tests.browser import chromium, open_page

WIDTHS = [1400, 420]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A 12-day --sim run and its dashboard."""
    chromium()  # skip early, before the simulation, where there is no browser
    root = tmp_path_factory.mktemp("sim")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert trading_bot.main(["--sim", "--days", "12", "--sim-start", "2022-03-01",
                                 "--sim-dir", "sim"], environ={}) == 0
        assert report.main(["--log-dir", "sim/logs"]) == 0
    return root / "sim" / "logs" / "report.html"


CHARTS = """Array.from(document.querySelectorAll('svg.chart')).map(function (s) {
  var r = s.getBoundingClientRect();
  return {id: s.id, width: r.width, height: r.height,
          marks: s.querySelectorAll('path, rect, circle').length}; })"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dashboard_as_a_person_sees_it(dashboard, width, tmp_path):
    with open_page(dashboard, width) as page:
        assert page.evaluate("window.innerWidth") == width
        # No sideways scroll: the page is no wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        status = page.evaluate("document.getElementById('status').textContent")
        assert status.startswith("Last run 2022-03-16 12:00 EDT: done")
        assert "of the last 10 runs failed" in status and "kill switch off" in status
        box = page.evaluate("JSON.stringify(document.getElementById('status')"
                            ".getBoundingClientRect())")
        assert json.loads(box)["top"] < 150  # at the top, seen first
        charts = page.evaluate(CHARTS)
        assert [c["id"] for c in charts] == ["chart-equity", "chart-realised-pnl",
                                             "chart-by-symbol", "chart-by-reason"]
        for chart in charts:  # drawn: on screen, with its line or bars
            assert chart["width"] > 200 and chart["height"] > 100 and chart["marks"] >= 1, chart
        assert page.evaluate("document.querySelector('meta[name=viewport]') !== null")
        assert page.evaluate("document.querySelector('.generated').textContent") \
            .startswith("Generated ")
        assert page.errors == []
        assert page.outside_requests == []
        page.screenshot(tmp_path / f"dashboard-{width}.png")


def test_the_closed_trades_sort_by_a_click(dashboard):
    pnl = """Array.from(document.querySelectorAll('#trades tbody tr')).map(function (r) {
      return parseFloat(r.cells[6].textContent.replace(/[$,+]/g, '')); })"""
    with open_page(dashboard, 1400) as page:
        page.evaluate("document.querySelectorAll('#trades th')[6].click()")
        values = page.evaluate(pnl)
        assert len(values) >= 5 and values == sorted(values, reverse=True)
        page.evaluate("document.querySelectorAll('#trades th')[6].click()")
        assert page.evaluate(pnl) == sorted(values)
        assert page.errors == []


def test_a_failed_run_turns_the_status_red_with_its_error_expandable(dashboard, tmp_path):
    logs = dashboard.parent
    runs = sorted((logs / "runs").iterdir())
    latest = runs[-1] / "summary.json"
    summary = json.loads(latest.read_text())
    long_error = "BrokerError: the broker did not confirm the orders for " + ", ".join(
        f"SYM{i}" for i in range(60)) + "; they stay pending"
    summary.update(outcome="failed", errors=[long_error], kill_switch=True)
    failed_logs = tmp_path / "logs"
    failed_logs.mkdir()
    for name in ("trades.csv", "positions.json", "pending_orders.json"):
        if (logs / name).exists():
            (failed_logs / name).write_bytes((logs / name).read_bytes())
    (failed_logs / "runs" / runs[-1].name).mkdir(parents=True)
    (failed_logs / "runs" / runs[-1].name / "summary.json").write_text(json.dumps(summary))
    assert report.main(["--log-dir", str(failed_logs)]) == 0
    with open_page(failed_logs / "report.html", 420) as page:
        assert page.evaluate("document.getElementById('status').className") == "status bad"
        assert page.evaluate("getComputedStyle(document.getElementById('status'))"
                             ".backgroundColor") == "rgb(255, 235, 238)"
        status = page.evaluate("document.getElementById('status').textContent")
        assert ": failed" in status and "kill switch ON" in status
        # The whole error is there, folded: its first words show, a click shows the rest.
        assert page.evaluate("document.querySelector('details.error').open") is False
        page.evaluate("document.querySelector('details.error summary').click()")
        shown = page.evaluate("document.querySelector('details.error pre').innerText")
        assert shown == long_error
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        assert page.errors == [] and page.outside_requests == []


def test_the_empty_dashboard_says_so(tmp_path):
    chromium()
    assert report.main(["--log-dir", str(tmp_path)]) == 0
    with open_page(tmp_path / "report.html", 420) as page:
        assert "Nothing recorded yet" in page.evaluate("document.body.innerText")
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        assert page.errors == [] and page.outside_requests == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_backtest_report_draws_its_charts_offline(tmp_path, width):
    chromium()
    out = tmp_path / "bt"
    assert cli.main(["--start", "2021-01-04", "--end", "2021-06-30", "--symbols",
                     "AAPL,KO,MSFT", "--out", str(out)], environ={}) == 0
    with open_page(out / "report.html", width) as page:
        drawn = page.evaluate("document.querySelectorAll('.plotly-graph-div .main-svg')"
                              ".length")
        divs = page.evaluate("document.querySelectorAll('.plotly-graph-div').length")
        assert divs >= 3 and drawn >= divs  # every plotly chart rendered its SVG
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        titles = page.evaluate("Array.from(document.querySelectorAll('.gtitle'))"
                               ".map(function (t) { return t.textContent; })")
        assert any(t.endswith(": noon price, z-score and trades") for t in titles), titles
        assert page.errors == []
        assert page.outside_requests == []


MENU = """(function () {
  var div = Array.from(document.querySelectorAll('.plotly-graph-div')).filter(function (d) {
    return d.layout.updatemenus && d.layout.updatemenus.length; })[0];
  var button = div.layout.updatemenus[0].buttons[BUTTON];
  return Plotly.update(div, button.args[0], button.args[1]).then(function () {
    return [button.label, div.querySelector('.gtitle').textContent,
            div.layout.updatemenus[0].buttons.length,
            div.data.map(function (t) { return [t.name, Array.from(t.x), Array.from(t.y)]; })];
  });
})()"""


def test_the_symbol_menu_keeps_each_symbols_title(tmp_path):
    chromium()
    out = tmp_path / "bt"
    assert cli.main(["--start", "2021-01-04", "--end", "2021-06-30", "--symbols",
                     "AAPL,KO,MSFT", "--out", str(out)], environ={}) == 0
    with open_page(out / "report.html", 1400) as page:
        # What a choice in the menu does: plotly applies the button's own update.
        label, title, count, traces = page.evaluate(MENU.replace("BUTTON", "1"))
        assert title == f"{label}: noon price, z-score and trades"
        with open(out / "trades.csv") as handle:
            trades = list(csv.DictReader(handle))
        assert count == len({row["symbol"] for row in trades}) >= 2  # every traded symbol
        # The chart now shows that symbol's own trades and lines.
        mine = [row for row in trades if row["symbol"] == label]
        drawn = {name: (x, y) for name, x, y in traces}
        assert drawn["exit"][0] == [row["exit_time"][:10] for row in mine]
        assert drawn["exit"][1] == pytest.approx([float(row["exit_price"]) for row in mine])
        entries = drawn["long entry"][1] + drawn["short entry"][1]
        assert sorted(entries) == pytest.approx(sorted(float(r["entry_price"]) for r in mine))
        assert len(drawn["price at noon"][0]) == len(drawn["z-score"][0]) > 100
        assert page.errors == []
