"""Configuration: defaults, overrides from the environment, and errors that name the fix."""

import pytest

from config import DEFAULT_TICKERS, Config, load_config, load_credentials, read_env
from errors import ConfigError


def test_defaults_are_the_design():
    c = load_config({})
    assert c == Config()
    assert len(c.tickers) == 50 and len(set(c.tickers)) == 50
    assert (c.z_score_window, c.long_entry_z, c.short_entry_z) == (30, -1.5, 1.5)
    assert (c.long_exit_z, c.short_exit_z, c.long_stop_z, c.short_stop_z) == (-0.1, 0.1, -3, 3)
    assert (c.position_size_usd, c.max_holding_days, c.alpaca_paper) == (100.0, 5, True)
    assert c.tickers == DEFAULT_TICKERS


def test_environment_overrides():
    c = load_config({"TICKERS": "aapl, msft,KO", "POSITION_SIZE_USD": "250",
                     "Z_SCORE_WINDOW": "20", "ALPACA_PAPER": "false", "ALLOW_SHORTS": "no"})
    assert c.tickers == ("AAPL", "MSFT", "KO")
    assert (c.position_size_usd, c.z_score_window, c.alpaca_paper, c.allow_shorts) == \
        (250.0, 20, False, False)


@pytest.mark.parametrize("env, names", [
    ({"POSITION_SIZE_USD": "-5"}, "POSITION_SIZE_USD"),
    ({"POSITION_SIZE_USD": "abc"}, "POSITION_SIZE_USD"),
    ({"Z_SCORE_WINDOW": "2.5"}, "Z_SCORE_WINDOW"),
    ({"LONG_STOP_Z": "-1.0"}, "LONG_STOP_Z"),  # stop inside the entry
    ({"LONG_EXIT_Z": "-2.0"}, "LONG_EXIT_Z"),  # exit beyond the entry
    ({"SHORT_STOP_Z": "1.2"}, "SHORT_STOP_Z"),
    ({"TICKERS": "AAPL,aapl"}, "TICKERS"),
    ({"TICKERS": "AAPL,$$$"}, "TICKERS"),
    ({"ALPACA_PAPER": "maybe"}, "ALPACA_PAPER"),
    ({"MAX_HOLDING_DAYS": "0"}, "MAX_HOLDING_DAYS"),
    ({"DATA_FEED": "nasdaq"}, "DATA_FEED"),
    ({"REQUEST_TIMEOUT_SECONDS": "nan"}, "REQUEST_TIMEOUT_SECONDS"),
])
def test_bad_values_name_the_setting(env, names):
    with pytest.raises(ConfigError, match=names):
        load_config(env)


def test_credentials_accept_both_names_and_never_show_in_repr():
    creds = load_credentials({"ALPACA_API_KEY": "PKTEST123", "ALPACA_SECRET_KEY": "s3cr3t-xyz"})
    assert (creds.key_id, creds.secret_key) == ("PKTEST123", "s3cr3t-xyz")
    assert "PKTEST123" not in repr(creds) and "s3cr3t" not in repr(creds)
    creds = load_credentials({"APCA_API_KEY_ID": "K", "APCA_API_SECRET_KEY": "S"})
    assert creds.key_id == "K"


def test_missing_keys_point_at_env_example_and_sim():
    with pytest.raises(ConfigError, match=r"ALPACA_SECRET_KEY.*\.env\.example.*--sim"):
        load_credentials({"ALPACA_API_KEY": "K"})


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSITION_SIZE_USD=300\nZ_SCORE_WINDOW=25\n")
    env = read_env(env_file, {"Z_SCORE_WINDOW": "40"})
    c = load_config(env)
    assert (c.position_size_usd, c.z_score_window) == (300.0, 40)
