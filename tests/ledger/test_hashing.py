"""The entry hash written out by hand equals the canonical JSON encoding it stands for."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from ledger.hashing import _canonical, content_hash, entry_digest

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@given(key=texts, code=texts, amount=st.integers(-(2**63), 2**63 - 1), seq=st.integers(1, 2**40), moment=texts)
def test_entry_digest_hashes_exactly_the_canonical_json_of_the_entry(key, code, amount, seq, moment):
    prev = "f" * 64
    expected = hashlib.sha256(_canonical([key, code, amount, seq, moment, prev])).hexdigest()
    digest = entry_digest(idempotency_key=key, account_code=code, amount=amount, seq=seq, moment=moment, prev_hash=prev)
    assert digest == expected


@given(
    kind=texts,
    entries=st.lists(st.tuples(texts, st.integers(-(2**63), 2**63 - 1)), max_size=5),
    reverses=st.none() | st.integers(1, 2**40),
)
def test_content_hash_hashes_exactly_the_canonical_json_of_the_posting(kind, entries, reverses):
    expected = hashlib.sha256(_canonical([kind, sorted([code, amount] for code, amount in entries), reverses]))
    assert content_hash(kind=kind, entries=entries, reverses_id=reverses) == expected.hexdigest()
