"""The backtester: the bot's own decision functions, run day by day over daily bars.

`run_backtest` (engine.py) is the entry point; `backtest.py` at the top level is its command
line. Everything the bot decides comes from signal_generator, risk and position_manager, and
every price and fill from simbroker's price model, so a backtest describes this bot.
"""

from backtester.engine import Result, Settings, run_backtest

__all__ = ["Result", "Settings", "run_backtest"]
