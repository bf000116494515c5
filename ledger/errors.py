"""The ledger's refusals. Each is an ApplicationError, so the API's one exception handler turns it into
the standard error shape; higher apps may also catch them and raise their own, friendlier codes.
"""

from __future__ import annotations

from typing import Any

from config.errors import ApplicationError


class LedgerError(ApplicationError):
    """Base class of every refusal raised by the ledger's services and selectors."""

    code = "ledger_error"

    def __init__(self, message: str = "", *, extra: dict[str, Any] | None = None) -> None:
        # The code is fixed by the class; callers only say what happened.
        super().__init__(None, message, extra=extra)


class InvalidPostingError(LedgerError, ValueError):
    """The request itself is malformed (fewer than two entries, a zero amount, mixed units...).

    It is a programming error of the caller far more often than a user's, hence also a ValueError.
    """

    status_code = 400
    code = "invalid_posting"


class InsufficientBalanceError(LedgerError):
    """An account that may not go negative would. `missing` is how much more it would need to hold."""

    status_code = 422
    code = "insufficient_balance"

    def __init__(self, message: str = "", *, missing: int, account_code: str) -> None:
        self.missing = missing
        # Kept on the exception, not in `extra`: account codes are internal and must not reach API clients.
        self.account_code = account_code
        super().__init__(message or "The balance is too low.", extra={"missing": missing})


class IdempotencyConflictError(LedgerError):
    """The idempotency key was already used for a transaction with different content."""

    status_code = 409
    code = "idempotency_conflict"

    def __init__(self, message: str = "", *, idempotency_key: str, existing_id: int) -> None:
        self.idempotency_key = idempotency_key
        self.existing_id = existing_id
        super().__init__(message or "This idempotency key was already used for a different request.")


class ReversalExceedsRemainingError(LedgerError):
    """A (partial) reversal asks for more than what is left to reverse of the original."""

    status_code = 422
    code = "reversal_exceeds_remaining"


class AccountNotFoundError(LedgerError):
    status_code = 404
    code = "account_not_found"


class AccountConflictError(LedgerError):
    """An account with this code exists with a different kind, unit or overdraft rule."""

    status_code = 409
    code = "account_conflict"


class InvalidCursorError(LedgerError):
    status_code = 400
    code = "invalid_cursor"
