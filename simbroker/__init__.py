"""simbroker: a local exchange that speaks Alpaca's REST API over real HTTP.

The unmodified Alpaca SDKs talk to it as to Alpaca: Trading API v2 (account, clock, calendar,
assets, positions, orders) and Market Data v2 (daily bars, latest trades and quotes,
snapshots) on one port of 127.0.0.1, with simulated, controllable time over daily bars
(`market_data`) and one intraday price model (`price_model`). Default credentials: key id
``SIMKEY``, secret ``SIMSECRET``.

Embedding::

    from simbroker import Exchange, ExchangeConfig, market_data, serve

    ex = Exchange(market_data.load("us-stocks"), ExchangeConfig(), now=new_york_noon(day))
    with serve(ex, port=0) as server:
        api = alpaca_trade_api.REST("SIMKEY", "SIMSECRET", base_url=server.trading_url)
        ...  # APCA_API_DATA_URL=server.data_url for market data
    ex.advance_to(later)           # processes opens, fills and closes in time order
    ex.save("exchange.json")       # atomic; Exchange.load(path, data) continues it

Standalone: ``python -m simbroker --port 8000`` (see ``simbroker/__main__.py``). Control
endpoints (clock, faults, request log, reset, save, load) are documented in
``simbroker/controls.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names below load on first use, so that `from simbroker import market_data` (the
# backtester) does not import the exchange and its HTTP server.
_LAZY = {"Exchange": "simbroker.exchange", "Fault": "simbroker.faults",
         "DEFAULT_KEY_ID": "simbroker.records", "DEFAULT_SECRET_KEY": "simbroker.records",
         "ExchangeConfig": "simbroker.records", "SimServer": "simbroker.server",
         "serve": "simbroker.server"}

if TYPE_CHECKING:
    from simbroker.exchange import Exchange
    from simbroker.faults import Fault
    from simbroker.records import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, ExchangeConfig
    from simbroker.server import SimServer, serve

__all__ = ["DEFAULT_KEY_ID", "DEFAULT_SECRET_KEY", "Exchange", "ExchangeConfig", "Fault",
           "SimServer", "serve"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simbroker' has no attribute {name!r}")
