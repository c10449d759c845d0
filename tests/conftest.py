"""Fixtures shared by several test modules."""

import pytest

from tests.bot_process import BotProcesses


@pytest.fixture(scope="module")
def bots():
    """A fork server of real bot processes, one per test module."""
    runner = BotProcesses()
    yield runner
    runner.close()
