"""perks.batching: requests that arrive together are run together, each caller gets its own outcome."""

import threading
import time

import pytest

from config import batching


def submit_all(items, run, keys=None, group="g"):
    """Submit every item from its own thread, all at once; return each one's outcome or exception."""
    results = [None] * len(items)
    start = threading.Barrier(len(items))

    def call(n):
        start.wait()
        try:
            results[n] = batching.submit(group=group, item=items[n], key=keys[n] if keys else None, run=run)
        except Exception as error:
            results[n] = error

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_every_caller_gets_the_outcome_of_its_own_item_and_batches_form():
    batches = []

    def run(items):
        batches.append(list(items))
        time.sleep(0.01)  # long enough for the others to queue up
        return [item * 10 for item in items]

    results = submit_all(list(range(40)), run)

    assert results == [n * 10 for n in range(40)]
    assert sorted(item for batch in batches for item in batch) == list(range(40))
    assert max(len(batch) for batch in batches) > 1
    assert batching._queues == {} and batching._leading == set()


def test_a_batch_never_holds_two_items_with_one_key(monkeypatch):
    monkeypatch.setattr(batching, "MAX_BATCH", 8)
    batches = []

    def run(items):
        batches.append(list(items))
        time.sleep(0.005)
        return list(items)

    keys = [n % 3 for n in range(30)]
    results = submit_all(list(range(30)), run, keys=keys)

    assert results == list(range(30))
    for batch in batches:
        assert len(batch) <= 8
        assert len({keys[item] for item in batch}) == len(batch)


def test_a_failed_batch_fails_its_callers_and_the_next_batches_still_run():
    failed = threading.Event()

    def run(items):
        if not failed.is_set():
            failed.set()
            time.sleep(0.01)
            raise ValueError("the database went away")
        return ["fine"] * len(items)

    results = submit_all(list(range(20)), run)

    errors = [result for result in results if isinstance(result, Exception)]
    assert errors and len(errors) + results.count("fine") == 20
    for error in errors:  # each caller its own error of the batch's kind (a 503, not a 500, for a lost database)
        assert isinstance(error, ValueError) and str(error) == "the database went away"
    assert len({id(error) for error in errors}) == len(errors)
    assert batching._queues == {} and batching._leading == set()
    assert batching.submit(group="g", item=1, key=None, run=lambda items: ["after"]) == "after"


@pytest.mark.parametrize("group", ["a", "b"])
def test_groups_are_run_apart(group):
    results = submit_all(list(range(10)), lambda items: [(group, item) for item in items], group=group)
    assert results == [(group, n) for n in range(10)]


def test_a_caller_that_waits_too_long_gives_up_and_the_group_goes_on(monkeypatch):
    monkeypatch.setattr(batching, "WAIT_SECONDS", 0.05)
    started = threading.Event()

    def slow(items):
        started.set()
        time.sleep(0.3)
        return ["slow"] * len(items)

    first = threading.Thread(target=lambda: batching.submit(group="g", item=1, key=None, run=slow))
    first.start()
    started.wait(5)
    with pytest.raises(RuntimeError, match="did not finish in time"):
        batching.submit(group="g", item=2, key=None, run=slow)
    first.join(5)

    assert batching.submit(group="g", item=3, key=None, run=lambda items: ["next"] * len(items)) == "next"
    assert batching._queues.get("g", []) == [] and batching._leading == set()
