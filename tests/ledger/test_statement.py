from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.errors import AccountNotFoundError, InvalidCursorError
from ledger.selectors import account_balance_get, account_statement_list
from tests.ledger.factories import WalletFactory, earn

pytestmark = pytest.mark.django_db


def _earn_amounts(issuance, wallet, amounts):
    for amount in amounts:
        earn(issuance=issuance, wallet=wallet, amount=amount)


def test_statement_pages_newest_first_with_an_opaque_cursor(issuance, wallet):
    _earn_amounts(issuance, wallet, range(1, 8))  # amounts 1..7, seq 1..7

    first = account_statement_list(account=wallet, limit=3)
    second = account_statement_list(account=wallet, cursor=first.next_cursor, limit=3)
    last = account_statement_list(account=wallet, cursor=second.next_cursor, limit=3)

    assert [entry.amount for entry in first.entries] == [7, 6, 5]
    assert [entry.amount for entry in second.entries] == [4, 3, 2]
    assert [entry.amount for entry in last.entries] == [1]
    assert last.next_cursor is None
    assert isinstance(first.next_cursor, str)


def test_statement_is_stable_when_new_entries_arrive_between_pages(issuance, wallet):
    _earn_amounts(issuance, wallet, range(1, 7))
    first = account_statement_list(account=wallet, limit=3)

    _earn_amounts(issuance, wallet, [100, 200])  # posted while the client reads page one

    second = account_statement_list(account=wallet, cursor=first.next_cursor, limit=3)
    assert [entry.amount for entry in first.entries] == [6, 5, 4]
    assert [entry.amount for entry in second.entries] == [3, 2, 1]
    assert second.next_cursor is None
    assert [entry.amount for entry in account_statement_list(account=wallet, limit=2).entries] == [200, 100]


def test_statement_loads_each_entry_with_its_transaction_in_one_query(issuance, wallet):
    _earn_amounts(issuance, wallet, [1, 2, 3])
    with CaptureQueriesContext(connection) as queries:
        page = account_statement_list(account=wallet)
        keys = [entry.transaction.idempotency_key for entry in page.entries]
    assert len(keys) == 3
    assert len(queries) == 1


def test_a_cursor_from_another_account_or_a_made_up_one_is_refused(issuance, wallet):
    _earn_amounts(issuance, wallet, [1, 2, 3])
    cursor = account_statement_list(account=wallet, limit=1).next_cursor

    with pytest.raises(InvalidCursorError):
        account_statement_list(account=WalletFactory(), cursor=cursor)
    with pytest.raises(InvalidCursorError):
        account_statement_list(account=wallet, cursor="not-a-cursor")


def test_balance_of_an_unknown_code_is_account_not_found():
    with pytest.raises(AccountNotFoundError) as caught:
        account_balance_get("nobody:wallet")
    assert caught.value.status_code == 404


def test_reading_a_balance_is_one_query_that_never_touches_entries(issuance, wallet):
    _earn_amounts(issuance, wallet, [5, 6])
    with CaptureQueriesContext(connection) as queries:
        assert account_balance_get(wallet).balance == 11
        assert account_balance_get(wallet.code).balance == 11
    assert len(queries) == 2
    assert all("ledger_entry" not in query["sql"] for query in queries)
