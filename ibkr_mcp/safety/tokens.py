"""Single-use confirmation tokens binding a preview to the exact order later placed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ibkr_mcp.errors import ConfirmationError
from ibkr_mcp.safety.context import OrderIntent, TokenCheck

#: Upper bound of remembered tokens; the oldest go first (a restart forgets them all anyway).
MAX_TOKENS = 10_000
REMEDY = (
    "Call preview_order again with exactly the order you want to place and use the new "
    "confirmation_token."
)
UNKNOWN = "unknown token (never issued, or the server restarted since the preview)"
USED = "token already used (tokens are single-use)"
MISMATCH = "token was issued for a different order"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def token_id(token: str) -> str:
    """A short, non-secret id of ``token`` for logs and the audit trail.

    The same form as ``audit.token_id`` (``tok_`` + 16 hex), so preview and place rows join.
    """
    return "tok_" + hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued token.

    Attributes:
        token: The secret to pass to place_order.
        token_id: A short non-secret id (safe to log and audit).
        expires_at: When the token stops being accepted.
    """

    token: str
    token_id: str
    expires_at: datetime


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    expires_at: datetime
    used: bool = False


class TokenStore:
    """In-memory, thread-safe store of confirmation tokens (a restart invalidates all).

    Args:
        ttl_seconds: How long an issued token stays valid.
        clock: Returns the current aware time (tests inject a fake clock).
        max_tokens: How many live tokens to remember at most (the oldest are dropped).
    """

    def __init__(
        self,
        ttl_seconds: int,
        *,
        clock: Callable[[], datetime] | None = None,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        if ttl_seconds <= 0 or max_tokens <= 0:
            raise ValueError("ttl_seconds and max_tokens must be positive")
        self._max_tokens = max_tokens
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def issue(self, intent: OrderIntent) -> IssuedToken:
        """Issue a token bound to ``intent``'s fingerprint."""
        token = secrets.token_urlsafe(24)
        now = self._clock()
        entry = _Entry(intent.fingerprint(), now + self._ttl)
        with self._lock:
            self._prune(now)
            while len(self._entries) >= self._max_tokens:
                # dicts keep insertion order: drop the oldest.
                del self._entries[next(iter(self._entries))]
            self._entries[token] = entry
        return IssuedToken(token=token, token_id=token_id(token), expires_at=entry.expires_at)

    def check(self, token: str | None, fingerprint: str) -> TokenCheck:
        """Whether ``token`` would be accepted for ``fingerprint`` now (no side effects)."""
        if not token:
            return TokenCheck(present=False, valid=False, reason="no confirmation token given")
        with self._lock:
            reason = self._problem(token, fingerprint, self._clock())
        return TokenCheck(present=True, valid=reason is None, reason=reason)

    def consume(self, token: str, fingerprint: str) -> None:
        """Mark ``token`` used; call only once the whole chain allowed and the order is sent.

        Raises:
            ConfirmationError: If the token is unknown, expired, used or for another order.
        """
        now = self._clock()
        with self._lock:
            reason = self._problem(token, fingerprint, now) if token else "no token given"
            if reason is None:
                self._entries[token].used = True
            self._prune(now)
        if reason is not None:
            details = {"reason": reason}
            if token:
                details["token_id"] = token_id(token)
            raise ConfirmationError(
                f"confirmation token rejected: {reason}", remedy=REMEDY, details=details
            )

    def _problem(self, token: str, fingerprint: str, now: datetime) -> str | None:
        entry = self._entries.get(token)
        if entry is None:
            return UNKNOWN
        if now >= entry.expires_at:
            return f"token expired at {entry.expires_at.isoformat()}"
        if entry.used:
            return USED
        if not hmac.compare_digest(entry.fingerprint, fingerprint):
            return MISMATCH
        return None

    def _prune(self, now: datetime) -> None:
        # One TTL and an insertion-ordered dict: tokens expire in order, so stop at the first
        # live one (this scanned every token on each issue and consume). A clock set back only
        # delays a prune; ``_problem`` still refuses an expired token.
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if now < entries[oldest].expires_at:
                return
            del entries[oldest]
