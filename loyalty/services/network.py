"""Open network points in the ledger: their unit, accounts, and the wallets of the people who hold them.

Per network: one wallet per person (`network:<id>:wallet:<member>`, never negative), an issuance account
per issuing brand (`network:<id>:issuance:<brand>`, negative: minus its balance is what the brand issued)
and a redemptions account per honoring brand (`network:<id>:redemptions:<brand>`). All in the network's
own unit, which the ledger never lets a posting mix with a brand's points.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from ledger.models import Account
from ledger.services import AccountSpec, account_get_or_create, accounts_get_or_create
from loyalty.models import Brand, Network, NetworkWallet


def network_unit(network_id: int) -> str:
    return f"points:network:{network_id}"


def network_wallet_code(network_id: int, member_id: int) -> str:
    return f"network:{network_id}:wallet:{member_id}"


def network_brand_account(*, network_id: int, brand: Brand, kind: str) -> Account:
    """The brand's issuance or redemptions account in the network's unit."""
    if kind not in (Account.Kind.ISSUANCE, Account.Kind.REDEMPTIONS):
        raise ValueError(f"A brand has no {kind} account in a network.")
    return account_get_or_create(
        code=f"network:{network_id}:{kind}:{brand.pk}",
        kind=kind,
        unit=network_unit(network_id),
        allow_negative=kind == Account.Kind.ISSUANCE,
    )


def network_wallets_ensure(*, network: Network | int, member_ids: Iterable[int]) -> dict[int, int]:
    """member id -> the account id of their network wallet, created in bulk where missing (safe under
    concurrent first uses: the accounts and the wallet rows are each inserted ON CONFLICT DO NOTHING)."""
    network_id = network if isinstance(network, int) else network.pk
    member_ids = sorted(set(member_ids))
    if not member_ids:
        return {}
    found = dict(
        NetworkWallet.objects.filter(network_id=network_id, member_id__in=member_ids).values_list(
            "member_id", "account_id"
        )
    )
    missing = [member_id for member_id in member_ids if member_id not in found]
    if missing:
        codes = accounts_get_or_create(
            specs=[
                AccountSpec(
                    code=network_wallet_code(network_id, member_id),
                    kind=Account.Kind.WALLET,
                    unit=network_unit(network_id),
                )
                for member_id in missing
            ]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {NetworkWallet._meta.db_table} (network_id, member_id, account_id, created_at)
                SELECT %s, v.member_id, v.account_id, now()
                  FROM unnest(%s::bigint[], %s::bigint[]) AS v(member_id, account_id)
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 - only the table name is formatted in
                [network_id, missing, [codes[network_wallet_code(network_id, m)] for m in missing]],
            )
        found.update({member_id: codes[network_wallet_code(network_id, member_id)] for member_id in missing})
    return found
