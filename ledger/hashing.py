"""Canonical encodings and hashes: the idempotency fingerprint of a request and the entry hash chain.

Both encode a JSON array (never string concatenation), so no choice of key or code can make two
different contents encode alike. Changing either function changes every stored hash: don't, or add
a version and keep the old one for verification.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable

# The prev_hash of the first entry of every account, and the head_hash of an account with no entries.
GENESIS_HASH = "0" * 64


# How json.dumps(..., ensure_ascii=False) writes one string, quotes included (the C function it uses).
_json_string = json.encoder.encode_basestring


def _canonical(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def canonical_time(moment: dt.datetime) -> str:
    """UTC, microseconds always written: the same instant always encodes to the same text.

    PostgreSQL keeps microseconds, so a value read back from the database encodes exactly as the
    value that was hashed before the insert.
    """
    if moment.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def content_hash(*, kind: str, entries: Iterable[tuple[str, int]], reverses_id: int | None) -> str:
    """Fingerprint of what a posting *does*: kind, (account code, amount) pairs, and what it reverses.

    Memo and metadata are left out on purpose: a retry that carries a fresh timestamp or a reworded
    memo is still the same request, and must return the original rather than conflict.
    """
    # The bytes of _canonical([kind, sorted([code, amount], ...), reverses_id]), written out directly
    # (tests/ledger/test_hashing.py holds them equal): every posting of a batch computes one.
    pairs = ",".join(f"[{_json_string(code)},{amount}]" for code, amount in sorted((c, int(a)) for c, a in entries))
    text = f"[{_json_string(kind)},[{pairs}],{'null' if reverses_id is None else int(reverses_id)}]"
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(
    *,
    idempotency_key: str,
    account_code: str,
    amount: int,
    seq: int,
    created_at: dt.datetime,
    prev_hash: str,
) -> str:
    """SHA-256 over an entry's content and the hash of the previous entry of the same account."""
    return entry_digest(
        idempotency_key=idempotency_key,
        account_code=account_code,
        amount=amount,
        seq=seq,
        moment=canonical_time(created_at),
        prev_hash=prev_hash,
    )


def entry_digest(*, idempotency_key: str, account_code: str, amount: int, seq: int, moment: str, prev_hash: str) -> str:
    """entry_hash with the time already in canonical form (a batch of entries shares one moment).

    The bytes hashed are exactly _canonical([idempotency_key, account_code, amount, seq, moment, prev_hash]),
    written out directly: a batch hashes thousands of entries, and this is several times quicker than
    building the list and running the generic encoder (tests/ledger/test_hashing.py holds them equal).
    """
    text = (
        f"[{_json_string(idempotency_key)},{_json_string(account_code)},{int(amount)},{int(seq)},"
        f"{_json_string(moment)},{_json_string(prev_hash)}]"
    )
    return hashlib.sha256(text.encode()).hexdigest()
