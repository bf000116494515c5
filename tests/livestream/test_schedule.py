"""The channel clock: a pure function of the epochs and the time, checked with fixed timestamps."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from livestream.schedule import (
    Epoch,
    Item,
    continuation_start,
    next_epoch,
    slot_after,
    slot_at,
    slots_overlapping,
)

T0 = dt.datetime(2026, 3, 5, 17, 0, tzinfo=dt.UTC)
A = Item("aaaaaaaaaaa", "A", 60, item_id=1)
B = Item("bbbbbbbbbbb", "B", 90, item_id=2)
C = Item("ccccccccccc", "C", 30, item_id=3)
D = Item("ddddddddddd", "D", 45, item_id=4)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def epoch(*items: Item, loop: bool = True, start_at: float = 0, start: int = 0) -> Epoch:
    return Epoch(starts_at=at(start_at), playlist=items, loop=loop, start=start)


def playing(epochs, seconds):
    slot = slot_at(epochs, at(seconds))
    return (slot.item.title, slot.offset) if slot else None


def test_item_and_offset_follow_the_playlist_back_to_back():
    epochs = [epoch(A, B, C)]
    assert playing(epochs, 0) == ("A", 0)
    assert playing(epochs, 59.5) == ("A", 59.5)
    assert playing(epochs, 60) == ("B", 0)
    assert playing(epochs, 149.25) == ("B", 89.25)
    assert playing(epochs, 150) == ("C", 0)
    slot = slot_at(epochs, at(100))
    assert (slot.starts_at, slot.ends_at) == (at(60), at(150))


def test_at_an_item_boundary_the_next_item_starts_at_offset_zero_exactly():
    epochs = [epoch(A, B, C)]
    current = slot_at(epochs, at(10))
    following = slot_after(epochs, current)
    assert following.item == B
    assert following.offset == 0
    assert following.starts_at == current.ends_at == at(60)


def test_a_looping_channel_starts_again_after_the_last_item_forever():
    epochs = [epoch(A, B, C)]  # 180 s a cycle
    assert playing(epochs, 180) == ("A", 0)
    assert playing(epochs, 180 * 1000 + 75) == ("B", 15)
    slot = slot_at(epochs, at(180 * 7 + 155))
    assert (slot.item, slot.starts_at, slot.ends_at) == (C, at(180 * 7 + 150), at(180 * 8))
    assert slot_after(epochs, slot).item == A


def test_a_non_looping_channel_is_off_the_air_after_its_last_item():
    epochs = [epoch(A, B, C, loop=False)]
    assert playing(epochs, 179.999) == ("C", 29.999)
    assert slot_at(epochs, at(180)) is None  # off the air: `now` answers on_air false, item null
    assert slot_at(epochs, at(10_000)) is None
    assert slot_after(epochs, slot_at(epochs, at(170))) is None  # nothing is next after the last item


def test_before_the_first_epoch_and_with_an_empty_playlist_the_channel_is_off_the_air():
    assert slot_at([epoch(A, start_at=100)], at(99)) is None
    assert slot_at([], at(0)) is None
    assert slot_at([epoch(loop=True)], at(5)) is None


def test_an_edit_takes_effect_when_the_video_on_air_ends_and_continues_after_it():
    epochs = [epoch(A, B, C)]
    current = slot_at(epochs, at(70))  # B, 10 s in
    edited = next_epoch(current, (A, B, D, C), loop=True, now=at(70))
    epochs.append(edited)

    assert edited.starts_at == at(150)  # when B ends: nobody jumps in the middle of B
    assert playing(epochs, 70) == ("B", 10)
    assert playing(epochs, 149.9) == ("B", 89.9)
    assert playing(epochs, 150) == ("D", 0)  # the item after B in the new order
    assert playing(epochs, 195) == ("C", 0)
    assert playing(epochs, 225) == ("A", 0)  # and the edited playlist loops
    assert slot_after(epochs, slot_at(epochs, at(70))).item == D  # "next" already shows the edit


def test_removing_the_video_on_air_continues_with_the_one_that_followed_it():
    current = slot_at([epoch(A, B, C)], at(70))  # B
    assert continuation_start(current, (A, C)) == 1  # C
    assert continuation_start(current, (C, A)) == 0


def test_a_reordered_playlist_continues_after_the_current_item_in_the_new_order():
    current = slot_at([epoch(A, B, C)], at(70))  # B
    assert continuation_start(current, (B, C, A)) == 1
    edited = next_epoch(current, (C, A, B), loop=True, now=at(70))
    assert [item.title for item in edited.sequence] == ["C", "A", "B"]
    non_looping = next_epoch(current, (C, A, B), loop=False, now=at(70))
    assert non_looping.sequence == ()  # B is now last: a non-looping playlist ends with it


def test_a_whole_new_playlist_starts_from_the_top_after_the_video_on_air():
    current = slot_at([epoch(A, B, C)], at(70))
    edited = next_epoch(current, (D,), loop=False, now=at(70))
    assert (edited.starts_at, edited.sequence) == (at(150), (D,))


def test_publishing_with_nothing_on_air_starts_now_from_the_top():
    ended = [epoch(A, loop=False)]
    assert slot_at(ended, at(500)) is None
    edited = next_epoch(slot_at(ended, at(500)), (B, C), loop=False, now=at(500))
    assert (edited.starts_at, edited.sequence) == (at(500), (B, C))


def test_an_item_never_plays_past_the_start_of_the_next_epoch():
    # Epochs start at item boundaries by construction; the function stays total for any input.
    epochs = [epoch(A, B), epoch(C, start_at=30)]
    slot = slot_at(epochs, at(10))
    assert (slot.item, slot.ends_at) == (A, at(30))
    assert slot_after(epochs, slot).item == C


def test_slots_overlapping_lists_the_items_around_a_boundary():
    epochs = [epoch(A, B, C)]
    around = slots_overlapping(epochs, at(55), at(65))
    assert [slot.item for slot in around] == [A, B]
    assert [slot.item for slot in slots_overlapping(epochs, at(10), at(20))] == [A]
    ended = [epoch(A, loop=False)]
    assert [slot.item for slot in slots_overlapping(ended, at(55), at(65))] == [A]
    assert slots_overlapping(ended, at(61), at(70)) == []


@settings(max_examples=150, deadline=None)
@given(
    durations=st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=8),
    elapsed_ms=st.integers(min_value=0, max_value=10 * 365 * 24 * 3600 * 1000),
    loop=st.booleans(),
)
def test_the_slot_always_contains_the_moment_asked_for(durations, elapsed_ms, loop):
    items = tuple(Item(f"v{i:010d}", str(i), d, item_id=i) for i, d in enumerate(durations))
    epochs = [Epoch(starts_at=T0, playlist=items, loop=loop)]
    now = T0 + dt.timedelta(milliseconds=elapsed_ms)
    slot = slot_at(epochs, now)
    if not loop and elapsed_ms >= sum(durations) * 1000:
        assert slot is None
        return
    assert slot.starts_at <= now < slot.ends_at
    assert slot.ends_at - slot.starts_at == dt.timedelta(seconds=slot.item.duration)
    assert abs(slot.offset - (now - slot.starts_at).total_seconds()) < 1e-6
    assert slot_at(epochs, slot.starts_at).item == slot.item
