"""loyalty.notify: waiters of an event wake when the processor says it is done (real Redis, threads)."""

import threading
import time

from loyalty import notify


def test_every_waiter_of_an_event_wakes_at_once_when_it_is_done():
    event_id = 10**12 + int(time.time() * 1000) % 10**6  # an id no test event has
    done = threading.Event()
    woke_after: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        notify.event_wait(event_id, seconds=10, is_done=done.is_set)
        woke_after.append(time.monotonic() - started)

    waiters = [threading.Thread(target=wait) for _ in range(20)]
    for thread in waiters:
        thread.start()
    time.sleep(0.5)  # all counted and blocked
    done.set()
    notify.events_done([event_id])
    for thread in waiters:
        thread.join(timeout=15)

    assert len(woke_after) == 20
    assert max(woke_after) < 5  # woken, not timed out after 10 s


def test_the_wake_of_one_event_does_not_wake_the_waiter_of_another():
    event_id = 2 * 10**12 + int(time.time() * 1000) % 10**6
    other = threading.Thread(target=lambda: time.sleep(0.3) or notify.events_done([event_id + 1]))
    other.start()

    started = time.monotonic()
    notify.event_wait(event_id, seconds=1.5, is_done=lambda: False)
    other.join()

    assert time.monotonic() - started >= 1.5
