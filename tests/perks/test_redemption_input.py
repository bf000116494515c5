"""The redemption body's fast validation agrees with RedemptionInputSerializer, or leaves it the word."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perks.api import RedemptionInputSerializer, redemption_input

TEXT = st.one_of(
    st.text(max_size=130),
    st.sampled_from(
        ["fan@example.com", " Fan@Example.com ", "a@b", "x" * 250 + "@b.co", "C-1", " ", "\x00a", "C\ud800"]
    ),
)
VALUE = st.one_of(TEXT, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))
MEMBER = st.one_of(
    st.dictionaries(st.sampled_from(["email", "external_id", "name"]), VALUE, max_size=3),
    VALUE,
)
BODY = st.one_of(
    st.fixed_dictionaries({"member": MEMBER, "perk": st.one_of(st.integers(-2, 10**20), VALUE)}),
    st.dictionaries(st.sampled_from(["member", "perk", "other"]), st.one_of(MEMBER, VALUE), max_size=3),
    VALUE,
)


def serializer_says(data):
    serializer = RedemptionInputSerializer(data=data)
    return serializer.validated_data if serializer.is_valid() else None


@settings(max_examples=600, deadline=None)
@given(BODY)
def test_the_fast_path_accepts_only_what_the_serializer_accepts_and_reads_it_the_same(data):
    fast = redemption_input(data)
    if fast is not None:
        assert serializer_says(data) == fast


@pytest.mark.parametrize(
    "data",
    [
        {"member": {"email": "fan@example.com"}, "perk": 3},
        {"member": {"email": " Fan@Example.com "}, "perk": 1},
        {"member": {"external_id": " C-1 "}, "perk": 10**18},
        {"member": {"email": "fan@example.com", "external_id": "C-1"}, "perk": 2},
    ],
)
def test_the_usual_bodies_take_the_fast_path(data):
    assert redemption_input(data) == serializer_says(data)
    assert redemption_input(data) is not None
