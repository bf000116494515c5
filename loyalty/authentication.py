"""API authentication (`Authorization: Api-Key <key>`) and per-key throttling."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling

from config.db import bulk_cursor
from loyalty.models import Brand, BrandApiKey

logger = logging.getLogger(__name__)


_KEY_FIELDS = [field.attname for field in BrandApiKey._meta.concrete_fields]
_BRAND_FIELDS = [field.attname for field in Brand._meta.concrete_fields]
_KEY_COLUMNS = ", ".join(f"k.{field.column}" for field in BrandApiKey._meta.concrete_fields)
_BRAND_COLUMNS = ", ".join(f"b.{field.column}" for field in Brand._meta.concrete_fields)
# What the library's get_usable_keys() (not revoked) with this prefix reads, and the key's brand.
_KEY_SQL = f"""
    SELECT {_KEY_COLUMNS}, {_BRAND_COLUMNS}
      FROM {BrandApiKey._meta.db_table} k JOIN {Brand._meta.db_table} b ON b.id = k.brand_id
     WHERE k.prefix = %s AND NOT k.revoked
     LIMIT 1
"""  # noqa: S608 - only table and column names are formatted in


def usable_key_get(prefix: str) -> BrandApiKey | None:
    """The usable (not revoked) API key with this prefix, its brand loaded, or None.

    Every API request runs this before anything else: prepared once per connection (config.db), it
    costs neither the ORM's query building nor PostgreSQL's planning on each request.
    """
    with bulk_cursor() as cursor:
        cursor.execute(_KEY_SQL, [prefix], prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    api_key = BrandApiKey.from_db(connection.alias, _KEY_FIELDS, row[: len(_KEY_FIELDS)])
    api_key.brand = Brand.from_db(connection.alias, _BRAND_FIELDS, row[len(_KEY_FIELDS) :])
    return api_key


# Keys that authenticated lately, by the SHA-256 of the key: a POS sending thousands of requests a second
# costs one database query per process every few seconds instead of one per request. The price: revoking
# a key (or deactivating its brand) takes effect within API_KEY_CACHE_SECONDS.
_recent_keys: dict[str, tuple[float, BrandApiKey]] = {}
_RECENT_KEYS_MAX = 10_000


def _api_key_find(key: str) -> BrandApiKey | None:
    prefix, _, _ = key.partition(".")
    api_key = usable_key_get(prefix)
    if api_key is None or not api_key.is_valid(key) or not api_key.brand.is_active:
        return None
    return api_key


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def recent_api_key(key: str) -> BrandApiKey | None:
    """The key, if this process checked it in the last API_KEY_CACHE_SECONDS and it has not expired since;
    else None (without asking the database: the caller then authenticates as usual)."""
    recent = _recent_keys.get(_digest(key))
    if recent is None or time.monotonic() - recent[0] >= settings.API_KEY_CACHE_SECONDS:
        return None
    return None if recent[1].has_expired else recent[1]


def _remember(key: str, api_key: BrandApiKey) -> None:
    if len(_recent_keys) >= _RECENT_KEYS_MAX:
        _recent_keys.clear()
    _recent_keys[_digest(key)] = (time.monotonic(), api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Api-Key <key>'.")
        key = key.strip()
        api_key = recent_api_key(key)
        if api_key is None:
            api_key = _api_key_find(key)
            if api_key is not None:
                _remember(key, api_key)
        if api_key is None or api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key is unknown, revoked or expired.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) without a key


class HasBrandApiKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, BrandApiKey):
            raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Api-Key <key>'.")
        return True


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """API_THROTTLE_RATE per key, as a token bucket in Redis shared by every process.

    (DRF's SimpleRateThrottle keeps a list of every request's time in the cache and reads and rewrites
    it on each request: at 6,000 a minute that is a 6,000-item list per request.) The bucket holds
    `rate` tokens and refills continuously, so bursts up to the rate pass and there is no window edge
    at which twice the rate gets through. A process takes tokens from it a few at a time (at most a
    hundredth of the rate, and only for a second), so a busy key costs a Redis round trip every few
    requests rather than every one; the total admitted never exceeds the rate. If Redis is away,
    requests pass: a throttle must not take the API down with it.
    """

    _SCRIPT = """
    local capacity = tonumber(ARGV[1])
    local per_second = tonumber(ARGV[2])
    local wanted = tonumber(ARGV[3])
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
    local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
    local tokens = tonumber(state[1]) or capacity
    local at = tonumber(state[2]) or now
    tokens = math.min(capacity, tokens + math.max(0, now - at) * per_second)
    local granted = math.min(wanted, math.floor(tokens))
    tokens = tokens - granted
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
    redis.call('EXPIRE', KEYS[1], math.ceil(capacity / per_second) + 1)
    return {granted, tostring((1 - tokens) / per_second)}
    """
    LEASE_SECONDS = 1.0
    _leases: dict[int, list[float]] = {}  # key id -> [tokens left, usable until (monotonic)]
    _lock = threading.Lock()

    def allow_request(self, request, view) -> bool:
        self.wait_seconds = None
        if not isinstance(request.auth, BrandApiKey):
            return True
        key_id = request.auth.pk
        now = time.monotonic()
        with self._lock:
            lease = self._leases.get(key_id)
            if lease is not None and lease[0] >= 1 and now < lease[1]:
                lease[0] -= 1
                return True
        capacity, seconds = throttling.SimpleRateThrottle.parse_rate(None, settings.API_THROTTLE_RATE)
        wanted = max(1, min(10, capacity // 100))
        try:
            client = get_redis_connection("default")
            granted, wait = client.register_script(self._SCRIPT)(
                keys=[f"tally:throttle:api_key:{key_id}"], args=[capacity, capacity / seconds, wanted]
            )
        except RedisError:
            logger.warning("Redis is away: API requests are not throttled")
            return True
        if not granted:
            self.wait_seconds = max(0.0, float(wait))
            return False
        with self._lock:
            self._leases[key_id] = [granted - 1, now + self.LEASE_SECONDS]
        return True

    def wait(self) -> float | None:
        return self.wait_seconds


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the API key in the OpenAPI schema (drf-spectacular finds it by class path)."""

    target_class = "loyalty.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create a key with `manage.py create_api_key --brand SLUG --name NAME`.",
        }
