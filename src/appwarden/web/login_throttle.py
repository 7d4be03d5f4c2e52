"""Failed logins throttled per account and per client address, for every login page.

A moving window (the ``limits`` library) counts failures; Redis shares the counts between workers when
configured, memory otherwise. While either count is spent, the login is refused before the password is
checked, so a correct password guessed during a lock-out is refused too. If the counter store cannot be
reached the login is refused as well: a throttle that fails open is no throttle.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from appwarden.config import Settings
from appwarden.errors import TooManyRequests, Unavailable


@dataclass(frozen=True)
class Lockout:
    """Why a login is refused now, and for how long."""

    scope: str  # "account" or "address"
    retry_after: int  # seconds


class LoginThrottle:
    """Counts failures for every login page together: the accounts are the same, so alternating
    between pages buys an attacker nothing."""

    def __init__(self, settings: Settings) -> None:
        uri = settings.redis_url or "memory://"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))
        window = settings.login_failure_window_seconds
        self._limits = {
            "account": RateLimitItemPerSecond(settings.login_max_failures_per_account, window),
            "address": RateLimitItemPerSecond(settings.login_max_failures_per_address, window),
        }

    def _keys(self, account: str, address: str) -> dict[str, tuple[str, str]]:
        return {
            "account": ("appwarden:login:account", account.casefold()[:100]),
            "address": ("appwarden:login:address", address),
        }

    def lockout(self, account: str, address: str) -> Lockout | None:
        """The lock-out in force for this account or address, if any (checked before the password)."""
        try:
            for scope, key in self._keys(account, address).items():
                item = self._limits[scope]
                if not self._limiter.test(item, *key):
                    reset, _ = self._limiter.get_window_stats(item, *key)
                    return Lockout(scope, max(1, math.ceil(reset - time.time())))
        except Exception as exc:  # the counter store is down: refuse rather than let guesses through
            raise Unavailable("logins are paused: the login throttle cannot be checked") from exc
        return None

    def failed(self, account: str, address: str) -> None:
        """Count one failed attempt against both the account and the address."""
        try:
            for scope, key in self._keys(account, address).items():
                self._limiter.hit(self._limits[scope], *key)
        except Exception as exc:
            raise Unavailable("logins are paused: the login throttle cannot be updated") from exc

    def succeeded(self, account: str, address: str) -> None:
        """A good login forgets the account's failures (the address keeps its count)."""
        key = self._keys(account, address)["account"]
        try:
            self._limiter.clear(self._limits["account"], *key)
        except Exception as exc:
            raise Unavailable("logins are paused: the login throttle cannot be updated") from exc

    @staticmethod
    def refusal(lockout: Lockout) -> TooManyRequests:
        """The error for a refused login (API callers): 429 with ``Retry-After``."""
        return TooManyRequests(
            f"too many failed logins for this {lockout.scope}; try again in {lockout.retry_after} s",
            code="login_throttled",
            retry_after=lockout.retry_after,
        )
