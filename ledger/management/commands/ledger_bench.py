"""manage.py ledger_bench: posting throughput and balance-read latency, in a throwaway database.

    manage.py ledger_bench                                   100,000 postings, reads at ~1k and ~1M entries
    manage.py ledger_bench --transactions 2000 --fill 20000  a quick try

It creates a database of its own (tally_bench_<pid>) on the same server, migrates it, runs there and
drops it at the end, also when it fails or is interrupted: development data is never touched.

1. Postings: `--transactions` earn transactions (issuance -> wallet, over `--wallets` wallets) through
   ledger.services.transaction_post, each its own database transaction: locks, key claim, entries,
   hash chain, rollups (every connected receiver of transaction_posted), commit-time checks, fsync.
   The first 500 run on one connection; the rest on `--workers` processes, each its own connection.
   Every earn locks its issuance account's balance row (the hash chain and the rollup are per
   account), so one issuance account is a serial point: the workers play `--workers` brands, each
   with its own issuance account and its own share of the wallets, as on a platform of many brands.
2. Balance reads: the median of `--reads` calls of ledger.selectors.account_balance_get, once with
   about 1,000 entries in the ledger and once with `--fill` entries.
3. The fill up to `--fill` entries is set-based SQL (INSERT ... SELECT generate_series): balanced
   two-entry transactions that pass the database's checks, but whose hashes are placeholders, not
   chained. They exist to make the tables big for the read measurement.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, connections, transaction

from ledger.models import Account, Balance, Entry, Transaction
from ledger.selectors import account_balance_get
from ledger.services import account_get_or_create, transaction_post

from ._progress import progress_bar

SMALL_LEDGER_TRANSACTIONS = 500  # 1,000 entries: the "small ledger" read measurement
FILL_BATCH = 100_000  # fill transactions per statement (and per commit)
UNIT = "points:bench"


@dataclass(frozen=True)
class _Share:
    """One worker's part of the postings: its brand's issuance account, its wallets, its key numbers."""

    issuance_id: int
    wallet_ids: list[int]
    first: int
    stop: int
    seed: int


def _post_share(share: _Share) -> int:
    """Post one share of the earns. Runs in a worker process (or in the command's own, for one share)."""
    rng = random.Random(share.seed)
    issuance = Account.objects.get(pk=share.issuance_id)
    wallets = list(Account.objects.filter(pk__in=share.wallet_ids))
    try:
        for n in range(share.first, share.stop):
            amount = rng.randint(1, 100)
            transaction_post(
                idempotency_key=f"bench:earn:{n}",
                kind="earn",
                entries=[(issuance, -amount), (rng.choice(wallets), amount)],
            )
    finally:
        connections.close_all()  # a worker's connection must be gone before the database is dropped
    return share.stop - share.first


class Command(BaseCommand):
    help = "Benchmark postings per second and balance-read latency in a throwaway database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--transactions", type=int, default=100_000, help="Postings to time.")
        parser.add_argument("--fill", type=int, default=1_000_000, help="Entries in the ledger for the big read.")
        parser.add_argument("--wallets", type=int, default=1000, help="Wallet accounts the postings spread over.")
        parser.add_argument("--workers", type=int, default=4, help="Posting processes (and brands).")
        parser.add_argument("--reads", type=int, default=1000, help="Balance reads per measurement.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options) -> None:
        started = time.perf_counter()
        with _throwaway_database(f"tally_bench_{os.getpid()}", self.stdout):
            self._run(**options)
        self.stdout.write(f"whole run: {time.perf_counter() - started:.0f} s")

    def _run(
        self, *, transactions: int, fill: int, wallets: int, workers: int, reads: int, seed: int, **_: object
    ) -> None:
        rng = random.Random(seed)
        workers = max(1, workers)
        issuers = [
            account_get_or_create(code=f"bench:brand:{b}:issuance", kind="issuance", unit=UNIT, allow_negative=True)
            for b in range(workers)
        ]
        accounts = [
            account_get_or_create(code=f"bench:brand:{n % workers}:wallet:{n}", kind="wallet", unit=UNIT)
            for n in range(max(workers, wallets))
        ]
        wallet_ids = [[wallet.pk for wallet in accounts[b::workers]] for b in range(workers)]

        small = min(SMALL_LEDGER_TRANSACTIONS, transactions)
        started = time.perf_counter()
        _post_share(_Share(issuers[0].pk, wallet_ids[0], 0, small, seed))
        single_elapsed = time.perf_counter() - started
        small_entries = Entry.objects.count()
        small_read = self._read_median(accounts, reads, rng)

        rest = transactions - small
        shares = [
            _Share(
                issuers[b].pk, wallet_ids[b], small + rest * b // workers, small + rest * (b + 1) // workers, seed + b
            )
            for b in range(workers)
        ]
        parallel_elapsed = self._post_parallel([share for share in shares if share.stop > share.first])

        self.stdout.write(
            f"postings, one connection: {small:,} earn transactions through transaction_post in "
            f"{single_elapsed:.1f} s = {small / single_elapsed:,.0f} transactions/s"
        )
        if rest:
            self.stdout.write(
                f"postings, {workers} processes ({workers} brands, one issuance account each): {rest:,} earn "
                f"transactions in {parallel_elapsed:.1f} s = {rest / parallel_elapsed:,.0f} transactions/s"
            )
        total_elapsed = single_elapsed + parallel_elapsed
        self.stdout.write(
            f"postings, all: {transactions:,} in {total_elapsed:.1f} s = {transactions / total_elapsed:,.0f} "
            "transactions/s (each one database transaction, durable at commit)"
        )
        self.stdout.write(
            f"balance read with {small_entries:,} entries in the ledger: median {small_read * 1e6:.0f} µs"
        )

        filled = self._fill(issuers[0], accounts, fill - Entry.objects.count())
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Entry._meta.db_table}, {Transaction._meta.db_table}, {Balance._meta.db_table}")
        big_entries = Entry.objects.count()
        big_read = self._read_median(accounts, reads, rng)
        self.stdout.write(
            f"balance read with {big_entries:,} entries in the ledger: median {big_read * 1e6:.0f} µs "
            f"({filled:,} of them added set-based with INSERT ... SELECT generate_series: balanced, checked "
            f"by the database, placeholder hashes)"
        )
        ratio = big_read / small_read if small_read else float("inf")
        if ratio < 1.5:
            verdict = "reading a balance does not get slower as the ledger grows"
        else:
            verdict = "reading a balance got slower with the bigger ledger: investigate (it should not)"
        self.stdout.write(
            f"{verdict}: {ratio:.2f}x the time for {big_entries / max(small_entries, 1):,.0f}x the entries "
            "(one primary-key lookup of the balance row, never a sum over entries)"
        )

    def _post_parallel(self, shares: list[_Share]) -> float:
        if not shares:
            return 0.0
        if len(shares) == 1:
            started = time.perf_counter()
            _post_share(shares[0])
            return time.perf_counter() - started
        # Processes, not threads: posting is half Python, and threads would queue on the GIL. Forked
        # children inherit the configured Django, pointed at the bench database; each opens its own
        # connection, so the parent's must be closed before forking.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(len(shares)) as pool:
            started = time.perf_counter()
            pool.map(_post_share, shares, chunksize=1)
            elapsed = time.perf_counter() - started
            pool.close()
            pool.join()
        return elapsed

    def _read_median(self, wallets: list[Account], reads: int, rng: random.Random) -> float:
        timings = []
        for _ in range(max(1, reads)):
            wallet = rng.choice(wallets)
            started = time.perf_counter()
            account_balance_get(wallet)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    def _fill(self, issuance: Account, wallets: list[Account], entries: int) -> int:
        """Add about `entries` entries as balanced issuance -> wallet transactions, set-based.

        Transaction g (0, 1, 2...) credits wallet g mod W, so the n-th fill entry of wallet k is
        g = k + W*n and gets seq head + g div W + 1: every (account, seq) stays unique and gap-free.
        """
        count = max(0, entries // 2)
        if not count:
            return 0
        wallet_ids = [wallet.pk for wallet in wallets]
        heads = dict(
            Balance.objects.filter(account_id__in=[issuance.pk, *wallet_ids]).values_list("account_id", "head_seq")
        )
        wallet_heads = [heads[pk] for pk in wallet_ids]
        sql = f"""
            WITH new_tx AS (
                INSERT INTO {Transaction._meta.db_table}
                       (idempotency_key, kind, memo, metadata, reverses_id, content_hash, created_at)
                SELECT 'bench:fill:' || g, 'earn', '', '{{}}'::jsonb, NULL, md5(g::text) || md5(g::text), now()
                  FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
             RETURNING id, idempotency_key, created_at
            ), numbered AS (
                SELECT id, created_at, split_part(idempotency_key, ':', 3)::bigint AS g,
                       1 + split_part(idempotency_key, ':', 3)::bigint %% 50 AS amount
                  FROM new_tx
            )
            INSERT INTO {Entry._meta.db_table} (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
            SELECT id, %(issuance)s, -amount, %(issuance_head)s + g + 1,
                   repeat('f', 64), encode(sha256(('fill:i:' || g)::bytea), 'hex'), created_at
              FROM numbered
            UNION ALL
            SELECT id, (%(wallets)s::bigint[])[g %% %(w)s + 1], amount,
                   (%(wallet_heads)s::bigint[])[g %% %(w)s + 1] + g / %(w)s + 1,
                   repeat('f', 64), encode(sha256(('fill:w:' || g)::bytea), 'hex'), created_at
              FROM numbered
        """  # noqa: S608 - only table names are formatted in
        with progress_bar(total=count, unit="txn", desc="filling", enabled=sys.stderr.isatty()) as bar:
            for start in range(0, count, FILL_BATCH):
                stop = min(start + FILL_BATCH, count) - 1
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        sql,
                        {
                            "start": start,
                            "stop": stop,
                            "issuance": issuance.pk,
                            "issuance_head": heads[issuance.pk],
                            "wallets": wallet_ids,
                            "wallet_heads": wallet_heads,
                            "w": len(wallet_ids),
                        },
                    )
                bar.update(stop - start + 1)
        # Bring the rollup rows in line with the new entries, set-based too.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {Balance._meta.db_table} AS b
                   SET balance = s.balance, total_credited = s.credited, total_debited = s.debited,
                       entry_count = s.n, head_seq = s.head_seq, updated_at = now()
                  FROM (SELECT account_id, SUM(amount) AS balance,
                               COALESCE(SUM(amount) FILTER (WHERE amount > 0), 0) AS credited,
                               COALESCE(-SUM(amount) FILTER (WHERE amount < 0), 0) AS debited,
                               COUNT(*) AS n, MAX(seq) AS head_seq
                          FROM {Entry._meta.db_table} GROUP BY account_id) AS s
                 WHERE b.account_id = s.account_id
                """  # noqa: S608
            )
        return count * 2


class _throwaway_database:
    """Point the default connection at a new, migrated database; drop it and point back on exit.

    Uses Django's own test-database machinery (connection.creation.create_test_db/destroy_test_db),
    which creates the database through a separate maintenance connection, runs every migration, and
    switches `settings.DATABASES` and the connection over, so threads opened meanwhile follow too.
    """

    def __init__(self, name: str, stdout) -> None:
        self.name = name
        self.stdout = stdout

    def __enter__(self) -> None:
        self.settings_dict = connection.settings_dict
        self.old_name = self.settings_dict["NAME"]
        self.old_test = dict(self.settings_dict.get("TEST") or {})
        self.settings_dict["TEST"] = {**self.old_test, "NAME": self.name}
        self.stdout.write(f"creating and migrating the throwaway database {self.name}...")
        started = time.perf_counter()
        try:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        except BaseException:
            try:
                self._drop()  # a migration failed after the database was created
            finally:
                self._restore()
            raise
        self.stdout.write(f"ready in {time.perf_counter() - started:.1f} s")

    def __exit__(self, *exc: object) -> None:
        try:
            if self._drop():
                self.stdout.write(f"dropped {self.name}")
        finally:
            self._restore()

    def _drop(self) -> bool:
        # destroy_test_db drops whatever database the connection points at: make sure it is ours.
        if connection.settings_dict["NAME"] != self.name:
            return False
        connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=False)
        return True

    def _restore(self) -> None:
        self.settings_dict["TEST"] = self.old_test
        self.settings_dict["NAME"] = self.old_name
        settings.DATABASES[connection.alias]["NAME"] = self.old_name
