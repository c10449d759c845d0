"""The project's version, printed by every command's --version. Raise it with each release."""

VERSION = "1.0.0"
