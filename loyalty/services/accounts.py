"""The ledger accounts of a brand and of each membership.

Per brand: issuance (may go negative: minus its balance is what the brand has issued), adjustments
(may go negative too), redemptions and expired (they only receive), and one wallet per membership,
which may never go negative, with, for brands whose purchases wait out a return window, one pending
account per membership (points earned, not yet spendable; never negative either). All of a brand's
accounts count the same unit, so no posting can mix two brands' points by accident.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ledger.models import Account
from ledger.services import account_get_or_create
from loyalty.models import Brand, Membership

BRAND_ACCOUNT_KINDS = {
    Account.Kind.ISSUANCE: True,
    Account.Kind.ADJUSTMENTS: True,
    Account.Kind.REDEMPTIONS: False,
    Account.Kind.EXPIRED: False,
}


def brand_unit(brand: Brand) -> str:
    return f"points:brand:{brand.pk}"


def brand_account(*, brand: Brand, kind: str) -> Account:
    return account_get_or_create(
        code=f"brand:{brand.pk}:{kind}",
        kind=kind,
        unit=brand_unit(brand),
        allow_negative=BRAND_ACCOUNT_KINDS[kind],
    )


def wallet_code(brand_id: int, membership_id: int) -> str:
    return f"brand:{brand_id}:wallet:{membership_id}"


class CodeParts(NamedTuple):
    scope: str  # "brand" or "network"
    scope_id: int  # the brand's or the network's id
    kind: str  # the account's kind: wallet, pending, issuance...
    owner: int | None  # the last number: the membership (brand wallets), member (network wallets) or brand


_CODE = re.compile(r"^(brand|network):(\d+):([a-z_]+)(?::(\d+))?$")


def code_parts(code: str) -> CodeParts | None:
    """What an account code of loyalty's says (brand:3:wallet:17, network:1:issuance:3, brand:3:issuance);
    None for an account that is not loyalty's (the ledger posts any code it is given). The inverse of
    wallet_code, pending_code, brand_account's and network's codes: receivers of the ledger's postings
    read them with this, not their own patterns."""
    match = _CODE.match(code)
    if match is None:
        return None
    scope, scope_id, kind, owner = match.groups()
    return CodeParts(scope, int(scope_id), kind, int(owner) if owner else None)


def pending_code(brand_id: int, membership_id: int) -> str:
    """The membership's pending account: purchase points inside their return window, not spendable."""
    return f"brand:{brand_id}:pending:{membership_id}"


def membership_wallet(*, membership: Membership) -> Account:
    """The membership's wallet, created (and linked) on first use; safe under concurrent first uses."""
    if membership.wallet_id is not None:
        return membership.wallet
    wallet = account_get_or_create(
        code=wallet_code(membership.brand_id, membership.pk),
        kind=Account.Kind.WALLET,
        unit=brand_unit(membership.brand),
        allow_negative=False,
    )
    Membership.objects.filter(pk=membership.pk, wallet__isnull=True).update(wallet=wallet)
    membership.wallet = wallet
    return wallet
