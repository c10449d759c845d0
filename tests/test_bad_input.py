"""Bad input, generated: settings and `.env` files, and damaged state files.

Every setting the bot reads either loads into a Config that keeps every documented rule, or
stops the run with a ConfigError that names the setting (exit 2, before any request and
before any file is written). Every state file either loads or stops the run with exit 1 and
the file's name in the log - and no state file is changed by that run, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import shutil
from dataclasses import fields
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import trading_bot
from config import Config, load_config, read_env
from errors import ConfigError, StateFileError
from position_manager import TRADE_COLUMNS, StateStore
from simbroker import serve
from tests.reliability_support import SCENARIOS, Prepared, bot_env, prepare, record_figure

SETTINGS = [f.name.upper() for f in fields(Config)]
THRESHOLDS = ["LONG_STOP_Z", "LONG_ENTRY_Z", "LONG_EXIT_Z", "SHORT_EXIT_Z", "SHORT_ENTRY_Z",
              "SHORT_STOP_Z"]
STATE_FILES = ("positions.json", "pending_orders.json", "trades.csv")
SHARED = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
EXAMPLES: dict[str, int] = {}


def counted(name: str) -> None:
    EXAMPLES[name] = EXAMPLES.get(name, 0) + 1


# -- values a person (or a bad copy-paste) may put in .env ------------------------------------

numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["0", "-0", "1e309", "-1e309", "nan", "inf", "1_000",
                                     "0x10", "1e-320", "9" * 5000, "3.", ".5", "+7", " 12 "]))
words = st.one_of(st.text(max_size=20),
                  st.sampled_from(["", " ", "true", "false", "yes", "no", "on", "off", "1",
                                   "TRUE", "maybe", "AAPL", "AAPL,MSFT", "aapl, msft,,",
                                   "BRK.B", "$$$", "AAPL,AAPL", "iex", "sip", "dynamic",
                                   "static", "DEBUG", "loud", "a\x00b", "é", "\u202e"]))
values = st.one_of(numbers, words)


def check_config_rules(c: Config) -> None:
    """The documented rules, restated: what validation promises of a loaded Config."""
    assert c.tickers and len(set(c.tickers)) == len(c.tickers)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]{0,5}([./][A-Z]{1,2})?", t) for t in c.tickers)
    assert c.z_score_window >= 3
    assert c.long_stop_z < c.long_entry_z < c.long_exit_z
    assert c.short_exit_z < c.short_entry_z < c.short_stop_z
    assert c.long_entry_z < 0 < c.short_entry_z
    assert c.position_size_usd >= 1 and c.max_holding_days > 0
    for f in fields(Config):
        value = getattr(c, f.name)
        if isinstance(value, float):
            assert math.isfinite(value), f.name
    assert c.fill_wait_seconds >= 0 and c.max_price_age_seconds >= 0
    assert c.retry_backoff_seconds >= 0
    assert c.fill_poll_seconds > 0 and c.request_timeout_seconds > 0
    assert c.run_deadline_seconds > 0 and c.request_retries >= 0
    assert c.bars_feed in ("sip", "iex") and c.price_feed in ("iex", "sip", "delayed_sip")
    assert c.universe in ("static", "dynamic") and c.universe_size > 0
    assert c.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR")


@SHARED
@given(st.dictionaries(st.sampled_from(SETTINGS), values, max_size=6))
@example({"POSITION_SIZE_USD": "0"})
@example({"Z_SCORE_WINDOW": "100000"})
@example({"REQUEST_TIMEOUT_SECONDS": "1e300"})
@example({"LONG_STOP_Z": "-1.0"})  # the stop inside the entry
@example({"LONG_EXIT_Z": "-2.0"})  # the exit beyond the entry
def test_any_settings_load_with_every_rule_kept_or_name_the_setting(env):
    counted("settings")
    try:
        config = load_config(env)
    except ConfigError as exc:
        assert any(name in str(exc) for name in env), (str(exc), env)
        return
    check_config_rules(config)


finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@SHARED
@given(st.tuples(*[finite] * 6))
def test_thresholds_out_of_order_are_refused_by_name(zs):
    counted("thresholds")
    env = {name: repr(z) for name, z in zip(THRESHOLDS, zs, strict=True)}
    ls, le, lx, sx, se, ss = zs
    ordered = ls < le < lx and sx < se < ss and le < 0 < se
    try:
        load_config(env)
    except ConfigError as exc:
        assert not ordered
        assert any(name in str(exc) for name in THRESHOLDS), str(exc)
        return
    assert ordered


# -- .env files, through the bot ---------------------------------------------------------------

env_lines = st.one_of(
    st.tuples(st.sampled_from(SETTINGS + ["ALPACA_API_KEY", "ALPACA_SECRET_KEY", "TYPO"]),
              values).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=40),  # anything at all: dotenv skips what it cannot parse
    st.sampled_from(["export TICKERS=AAPL", "TICKERS", "=5", "# a comment", "'", "X='open",
                     "POSITION_SIZE_USD = -3", "LONG_STOP_Z=-1 # inside the entry"]),
)


@pytest.fixture(scope="module")
def quiet_exchange(tmp_path_factory):
    """A served exchange for runs that get past their configuration; the keys in the
    generated .env files are never its keys, so such a run stops at the first request."""
    prepared = prepare(SCENARIOS["entries"], tmp_path_factory.mktemp("env") / "prepared")
    exchange = prepared.exchange()
    with serve(exchange, port=0) as server:
        yield server


def run_main(argv: list[str], environ: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = trading_bot.main(argv, environ=environ)
    return code, err.getvalue()


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@SHARED
@given(lines=st.lists(env_lines, max_size=8), raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_any_env_file_runs_or_stops_with_exit_2_naming_the_setting(
        quiet_exchange, tmp_path, monkeypatch, lines, raw):
    counted(".env files")
    work = Path(tmp_path) / f"env{EXAMPLES['.env files']}"
    (work / "logs").mkdir(parents=True)
    (work / "logs" / "trades.csv").write_text(",".join(TRADE_COLUMNS) + "\n")
    env_file = work / ".env"
    text = "\n".join(lines)
    if raw is not None:
        env_file.write_bytes(text.encode() + b"\n" + raw)
    else:
        env_file.write_text(text)
    monkeypatch.chdir(work)
    before = file_bytes(work / "logs")
    requests_before = len(quiet_exchange.requests())
    urls = {"APCA_API_BASE_URL": quiet_exchange.trading_url,
            "APCA_API_DATA_URL": quiet_exchange.data_url}
    code, err = run_main(["--log-dir", str(work / "logs")], urls)
    if code == 2:
        try:
            settings_ = read_env(env_file, urls)
        except ConfigError:
            assert ".env" in err
        else:
            named = [n for n in [*settings_, "ALPACA_API_KEY", "ALPACA_SECRET_KEY"] if n in err]
            assert named, err
        assert "run failed" in err
        assert file_bytes(work / "logs") == before  # nothing written
        assert len(quiet_exchange.requests()) == requests_before  # nothing sent
    else:
        # The settings were valid (and the keys present but not the exchange's): 401.
        assert code == 1, err
        load_config(read_env(env_file, urls))
        assert "check ALPACA_API_KEY" in err


any_float = st.one_of(st.floats(0, 100), st.floats(-5, 5),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([0.0, 1e-300, 1e300, -1e-300, 1.0, 2.5]))
run_values = {
    "int": st.one_of(st.integers(0, 100), st.integers(-5, 5),
                     st.integers(-2**70, 2**70)).map(str),
    "float": any_float.map(repr),
    "bool": st.sampled_from(["true", "false"]),
    "str": words,
    "tuple[str, ...]": st.lists(st.sampled_from(["AAA", "BBB", "CCC", "DDD", "ZZZZ", "AB.C"]),
                                min_size=1, max_size=5, unique=True).map(",".join),
}
# The deadline is set for every run (3 s), and the thresholds have their own test: a random
# threshold is nearly always out of order, and the run would never start.
RUN_FIELDS = [f for f in fields(Config) if f.name != "run_deadline_seconds"
              and f.name.upper() not in THRESHOLDS]


@st.composite
def run_settings(draw) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(RUN_FIELDS), max_size=5, unique_by=lambda f: f.name))
    return {f.name.upper(): draw(run_values[str(f.type)]) for f in chosen}


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> Prepared:
    return prepare(SCENARIOS["entries"], tmp_path_factory.mktemp("settings") / "prepared")


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(env=run_settings())
@example(env={"REQUEST_TIMEOUT_SECONDS": "1e300"})
@example(env={"POSITION_SIZE_USD": "1e300"})
@example(env={"Z_SCORE_WINDOW": "100000"})
def test_settings_that_load_never_crash_a_run(entries, tmp_path, monkeypatch, env):
    """Whatever loads runs to a documented end (exit 0 or 1), never to a traceback."""
    try:
        load_config(env)
    except ConfigError:
        return
    counted("settings run")
    work = Path(tmp_path) / f"run{EXAMPLES['settings run']}"
    work.mkdir()
    monkeypatch.chdir(work)
    with entries.fresh(work) as (exchange, server, logs):
        environ = bot_env(server, exchange, entries.scenario.tickers, **env,
                          RUN_DEADLINE_SECONDS="3")
        code, err = run_main(["--log-dir", str(logs)], environ)
    if code == 2:  # settings that only the run can judge: ALPACA_PAPER=false without --live
        assert "ALPACA_PAPER=false" in err and "--live" in err
    assert code in (0, 1, 2), err
    # An exception other than the bot's own would escape main(), or be logged as this.
    assert "unexpected error" not in err, err



# -- state files --------------------------------------------------------------------------------

TRADE_ROW = {"symbol": "DDD", "side": "long", "qty": "1.25", "entry_time":
             "2022-02-24T17:00:00+00:00", "entry_price": "80", "exit_time":
             "2022-02-25T17:00:00+00:00", "exit_price": "80.8", "pnl_usd": "1.00",
             "exit_reason": "mean_reversion", "holding_days": "1", "entry_z": "-2.0000",
             "exit_z": "0.1000", "entry_order_id": "id-1", "exit_order_id": "id-2",
             "entry_client_order_id": "mr-20220224-DDD-long",
             "exit_client_order_id": "mr-20220225-DDD-exit"}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Prepared:
    """State with something in every file: holdings, pending orders (from a day of partial
    fills, ended at the close), and one earlier round trip."""
    prepared = prepare(SCENARIOS["partial-next-day"],
                       tmp_path_factory.mktemp("state") / "prepared")
    header = ",".join(TRADE_COLUMNS)
    row = ",".join(TRADE_ROW[c] for c in TRADE_COLUMNS)
    (prepared.logs / "trades.csv").write_text(f"{header}\n{row}\n")
    return prepared


def valid(records: Prepared, name: str) -> bytes:
    return (records.logs / name).read_bytes()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def damaged_json(base: bytes, key: str) -> st.SearchStrategy[bytes]:
    data = json.loads(base)
    name = next(iter(data[key]))
    record = data[key][name]

    def mutate(change: tuple[str, object, str]) -> bytes:
        field_name, value, how = change
        copy = json.loads(base)
        target = copy[key][name]
        if how == "replace":
            target[field_name] = value
        elif how == "drop":
            target.pop(field_name, None)
        elif how == "unknown":
            target["x_" + field_name] = value
        elif how == "rename":
            copy[key][str(value)] = copy[key].pop(name)
        return json.dumps(copy, allow_nan=True).encode()

    changes = st.tuples(st.sampled_from(sorted(record)), json_values,
                        st.sampled_from(["replace", "replace", "drop", "unknown", "rename"]))
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(base) - 1).map(lambda n: base[:n]),  # a torn file
        json_values.map(lambda v: json.dumps(v).encode()),
        changes.map(mutate),
        st.sampled_from([b"", b"{}", b"[]", b"null", b'{"version": 2, "%s": {}}' % key.encode(),
                         b"[" * 100_000 + b"]" * 100_000, base.replace(b"1.00", b"NaN", 1),
                         b"\xef\xbb\xbf" + base, base + b"\x00"]),
    )


def damaged_csv(base: bytes) -> st.SearchStrategy[bytes]:
    header = base.split(b"\n", 1)[0]
    cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
    rows = st.lists(st.lists(cells, min_size=0, max_size=20).map(lambda r: ",".join(r)),
                    max_size=3).map(lambda rs: "\n".join(rs).encode("utf-8"))
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(base) - 1).map(lambda n: base[:n]),
        rows.map(lambda r: header + b"\n" + r),
        rows,
        st.sampled_from([header.replace(b"pnl_usd", b"pnl"), base + b"a,b\n",
                         base + b'"unclosed,quote\n', base.replace(b"DDD", b"D\x00D"),
                         base + b'"' + b"x" * 200_000 + b'"\n',
                         base + b"\xff\xfe\n"]),
    )


@pytest.fixture(scope="module")
def state_server(records):
    with serve(records.exchange(), port=0) as server:
        yield server


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("name", STATE_FILES)
def test_a_damaged_state_file_stops_the_run_naming_it_and_changes_nothing(
        records, state_server, tmp_path, monkeypatch, name, data):
    base = valid(records, name)
    strategy = damaged_csv(base) if name.endswith(".csv") else \
        damaged_json(base, "positions" if name == "positions.json" else "orders")
    content = data.draw(strategy, label=name)
    counted(name)
    work = Path(tmp_path) / f"{name}-{EXAMPLES[name]}"
    logs = work / "logs"
    shutil.copytree(records.logs, logs)
    (logs / name).write_bytes(content)
    monkeypatch.chdir(work)
    before = {n: (logs / n).read_bytes() for n in STATE_FILES}
    state_server.exchange = records.exchange()
    environ = bot_env(state_server, state_server.exchange, records.scenario.tickers)
    code, err = run_main(["--log-dir", str(logs)], environ)
    assert "unexpected error" not in err, err
    if code == 1:
        failure = [line for line in err.splitlines() if "run failed" in line]
        assert failure and name in failure[0], err
        assert {n: (logs / n).read_bytes() for n in STATE_FILES} == before
    else:
        assert code == 0, err
        counted(f"{name} accepted")



def _edit(name: str, key: str, field_name: str, value: object):
    def edit(base: bytes) -> bytes:
        data = json.loads(base)
        first = next(iter(data[key]))
        data[key][first][field_name] = value
        return json.dumps(data, allow_nan=True).encode()
    return name, edit


DAMAGE = {
    "huge": ("positions.json", None),  # a sparse 60 MB file, see below
    "torn": ("pending_orders.json", lambda b: b[: len(b) // 2]),
    "not JSON": ("positions.json", lambda b: b"positions: AAA\n"),
    "nested": ("pending_orders.json", lambda b: b"[" * 200_000 + b"]" * 200_000),
    "list": ("positions.json", lambda b: b"[]"),
    "version 2": ("positions.json", lambda b: b.replace(b'"version": 1', b'"version": 2')),
    "NaN qty": _edit("positions.json", "positions", "qty", float("nan")),
    "negative qty": _edit("positions.json", "positions", "qty", -1.0),
    "string qty": _edit("pending_orders.json", "orders", "qty", "1.5"),
    "sideways": _edit("positions.json", "positions", "side", "sideways"),
    "no time": _edit("positions.json", "positions", "entry_time", "yesterday"),
    "naive time": _edit("pending_orders.json", "orders", "created_at", "2022-03-04T12:00:00"),
    "unknown intent": _edit("pending_orders.json", "orders", "intent", "hold"),
    "unknown field": _edit("pending_orders.json", "orders", "note", "?"),
    "csv header": ("trades.csv", lambda b: b.replace(b"pnl_usd", b"pnl", 1)),
    "csv short line": ("trades.csv", lambda b: b + b"AAA,long\n"),
    "csv huge field": ("trades.csv", lambda b: b + b'"' + b"x" * 200_000 + b'"\n'),
    "csv not UTF-8": ("trades.csv", lambda b: b + b"\xff\xfe\n"),
}


def digests(logs: Path) -> dict[str, str]:
    return {n: hashlib.sha256((logs / n).read_bytes()).hexdigest() for n in STATE_FILES}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_each_kind_of_damage_stops_the_run_naming_the_file(records, state_server, tmp_path,
                                                           monkeypatch, case):
    name, damage = DAMAGE[case]
    logs = tmp_path / "logs"
    shutil.copytree(records.logs, logs)
    if damage is None:
        with open(logs / name, "r+b") as handle:
            handle.truncate(60 * 1024 * 1024)
    else:
        (logs / name).write_bytes(damage(valid(records, name)))
    monkeypatch.chdir(tmp_path)
    before = digests(logs)
    state_server.exchange = records.exchange()
    orders = len(state_server.exchange.orders)
    environ = bot_env(state_server, state_server.exchange, records.scenario.tickers)
    code, err = run_main(["--log-dir", str(logs)], environ)
    assert code == 1, err
    (failure,) = [line for line in err.splitlines() if "run failed" in line]
    assert name in failure, failure
    assert digests(logs) == before
    assert len(state_server.exchange.orders) == orders  # it stopped before any order


def _number(value: object, *, positive: bool) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > 0 or not positive)


def _time(value: object) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _day(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value))
    except ValueError:
        return False


# What a record must be, restated from position_manager's docstrings: the oracle.
RULES = {
    "positions": {
        "symbol": lambda v, key: v == key and v != "",
        "side": lambda v, key: v in ("long", "short"),
        "qty": lambda v, key: _number(v, positive=True),
        "entry_time": lambda v, key: _time(v),
        "entry_price": lambda v, key: _number(v, positive=True),
        "entry_z": lambda v, key: v is None or _number(v, positive=False),  # None: unknown
        "entry_order_id": lambda v, key: isinstance(v, str),
        "entry_client_order_id": lambda v, key: isinstance(v, str),
        "asset_id": lambda v, key: isinstance(v, str),
    },
    "orders": {
        "client_order_id": lambda v, key: v == key,
        "symbol": lambda v, key: isinstance(v, str) and v != "",
        "intent": lambda v, key: v in ("entry", "exit"),
        "position_side": lambda v, key: v in ("long", "short"),
        "order_side": lambda v, key: v in ("buy", "sell"),
        "qty": lambda v, key: _number(v, positive=True),
        "limit_price": lambda v, key: _number(v, positive=True),
        "z": lambda v, key: v is None or _number(v, positive=False),  # None: unknown
        "trading_day": lambda v, key: _day(v),
        "created_at": lambda v, key: _time(v),
        "exit_reason": lambda v, key: isinstance(v, str),
        "order_id": lambda v, key: isinstance(v, str),
        "broker_evidence": lambda v, key: isinstance(v, str),
        "order_type": lambda v, key: v in ("limit", "market"),
        "time_in_force": lambda v, key: v in ("day", "cls"),
        "decision_price": lambda v, key: _number(v, positive=False),
    },
}
# They have defaults.
OPTIONAL = {"exit_reason", "order_id", "broker_evidence", "order_type", "time_in_force",
            "decision_price", "asset_id"}


def record_is_valid(key: str, name: str, record: object) -> bool:
    rules = RULES[key]
    if not (isinstance(record, dict) and set(rules) - OPTIONAL <= set(record) <= set(rules)):
        return False
    if key == "orders" and record.get("order_type") == "market":
        # A market order has no limit: its limit_price is 0.
        rules = {**rules, "limit_price": lambda v, key: _number(v, positive=False) and v == 0}
    return all(rules[f](v, name) for f, v in record.items())


field_values = st.one_of(
    json_values, st.sampled_from(["long", "short", "sideways", "entry", "exit", "buy", "sell",
                                  "", "AAA", "limit", "market", "day", "cls", "2022-03-04",
                                  "2022-03-04T17:00:00+00:00",
                                  "2022-03-04T17:00:00", "yesterday", 0, -1, 1e-9, 2.5,
                                  float("nan"), float("inf"), True, None]))


@settings(max_examples=400, deadline=None)
@given(which=st.sampled_from(["positions.json", "pending_orders.json"]), data=st.data())
def test_every_field_of_a_record_is_checked(records, tmp_path_factory, which, data):
    """A record loads if and only if every field keeps its rule; otherwise the error names
    the file and the entry."""
    key = "positions" if which == "positions.json" else "orders"
    state = json.loads(valid(records, which))
    name = data.draw(st.sampled_from(sorted(state[key])), label="entry")
    record = state[key][name]
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        how = data.draw(st.sampled_from(["set", "set", "set", "drop", "unknown", "rekey"]))
        field_name = data.draw(st.sampled_from(sorted(RULES[key])), label="field")
        if how == "set":
            record[field_name] = data.draw(field_values, label=field_name)
        elif how == "drop":
            record.pop(field_name, None)
        elif how == "unknown":
            record["note"] = "?"
        else:
            state[key][data.draw(st.text(max_size=6), label="new key")] = state[key].pop(name)
            break
    counted(f"{which} records")
    logs = tmp_path_factory.mktemp("records")
    (logs / which).write_text(json.dumps(state, allow_nan=True))
    store = StateStore(logs)
    expected = all(record_is_valid(key, n, r) for n, r in state[key].items())
    try:
        store.load_holdings() if key == "positions" else store.load_pending()
    except StateFileError as exc:
        assert not expected, str(exc)
        assert which in str(exc)
        return
    assert expected, state


@pytest.fixture(scope="module", autouse=True)
def report_examples():
    yield
    record_figure("bad_input", **{name.replace(" ", "_"): n for name, n in EXAMPLES.items()})
