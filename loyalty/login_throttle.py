"""Failed logins counted in Redis, per email and per client address, on the fan and portal login pages.

A fixed window from the first failure: `LOGIN_THROTTLE_FAILURES` failures for one email (someone guessing
one person's password) or `LOGIN_THROTTLE_FAILURES_PER_IP` from one address (someone trying many emails)
within `LOGIN_THROTTLE_WINDOW_SECONDS` refuse further attempts until the window ends, correct passwords
included: otherwise the guesser learns when they hit. A successful login clears its email's count.
Redis is a cache here: losing it forgets the counts, which only gives a guesser a fresh window.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def _keys(*, email: str, ip: str) -> tuple[str, str]:
    # Hashed: the cache holds no email addresses in clear.
    email_key = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:email:{email_key}", f"login-fail:ip:{ip}"


def login_allowed(*, email: str, ip: str) -> bool:
    email_key, ip_key = _keys(email=email, ip=ip)
    counts = cache.get_many([email_key, ip_key])
    return (
        counts.get(email_key, 0) < settings.LOGIN_THROTTLE_FAILURES
        and counts.get(ip_key, 0) < settings.LOGIN_THROTTLE_FAILURES_PER_IP
    )


def login_failed(*, email: str, ip: str) -> None:
    for key in _keys(email=email, ip=ip):
        # add() starts the window only if none is running; incr() keeps its expiry.
        cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: a new window
            cache.set(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS)


def login_succeeded(*, email: str, ip: str) -> None:
    email_key, _ = _keys(email=email, ip=ip)
    cache.delete(email_key)
