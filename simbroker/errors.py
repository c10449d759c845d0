"""The exchange's one exception: an Alpaca API error with its HTTP status and Alpaca code.

Alpaca answers every failed request with ``{"code": <8 digits>, "message": "..."}``; the first
three digits of the code are the HTTP status. The exchange raises `ApiError` wherever Alpaca
would answer with an error, and the HTTP layer only serialises it, so the Python API and the
wire agree on every rejection.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request Alpaca would refuse. `status` is the HTTP status, `code` Alpaca's error code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


# Alpaca's codes (https://docs.alpaca.markets/docs/orders-at-alpaca, "Order errors").
MALFORMED = 40010000
INVALID_PARAMETER = 40010001  # a request parameter Alpaca cannot accept (see bad_request)
UNAUTHORIZED = 40110000
FORBIDDEN = 40310000
PDT_DENIED = 40310100
NOT_FOUND = 40410000
UNPROCESSABLE = 42210000
INTERNAL = 50010000


def malformed(message: str) -> ApiError:
    return ApiError(400, MALFORMED, message)


def bad_request(message: str) -> ApiError:
    """400 with Alpaca's code for an invalid parameter: what the Market Data API answers for
    any parameter error (its spec: "400: One of the request parameters is invalid")."""
    return ApiError(400, INVALID_PARAMETER, message)


def unauthorized(message: str = "request is not authorized") -> ApiError:
    return ApiError(401, UNAUTHORIZED, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, FORBIDDEN, message)


def pdt_denied(message: str) -> ApiError:
    return ApiError(403, PDT_DENIED, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, UNPROCESSABLE, message)


def for_status(status: int, message: str | None = None) -> ApiError:
    """An error with Alpaca's code for an arbitrary status (used by injected faults)."""
    code = status * 100_000 if 100 <= status <= 599 else INTERNAL
    return ApiError(status, code, message or f"simulated fault: HTTP {status}")
