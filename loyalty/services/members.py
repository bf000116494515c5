"""Writes for brands, staff, members and memberships. Views, admin and commands call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from config.db import bulk_cursor
from config.errors import ApplicationError
from loyalty.models import Brand, BrandApiKey, BrandStaff, Member, Membership, User
from loyalty.selectors import base_tier_id
from loyalty.tokens import email_verification_token


class EmailUnverifiedError(ApplicationError):
    status_code = 403
    code = "email_unverified"


@transaction.atomic
def user_sign_up(*, email: str, password: str, name: str = "", site_url: str) -> User:
    """Create a fan's login and mail them a link to verify their address (sent after commit).

    The login is not linked to any member yet: a till may already have made a member with this email,
    with points, and typing an address proves nothing. `user_email_verify` links them once the person
    has opened the link, so nobody can take over someone else's points, or route their future till
    purchases to themselves, by signing up with their address.
    """
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError(
            "email_taken",
            "An account with this email already exists.",
            fields={"email": ["An account with this email already exists."]},
        )
    user = User.objects.create_user(email=email, password=password, first_name=name[:150])
    email_verification_send(user=user, site_url=site_url)
    return user


def email_verification_send(*, user: User, site_url: str) -> None:
    """Mail `user` a signed link that verifies their address, once the current transaction commits."""
    link = site_url.rstrip("/") + reverse("email_verify", args=[email_verification_token(user)])
    context = {"user": user, "link": link, "days": settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS // 86400}
    subject = "Confirm your email address for Tally"
    body = render_to_string("registration/email_verification_email.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))


@transaction.atomic
def user_email_verify(*, user: User) -> Member:
    """Record that `user` reads their address, and link the login to the member with that email (the one a
    till may have made, with its points), or a new one. Verifying again changes nothing."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return member_for_user(user=user)


@transaction.atomic
def user_profile_update(*, user: User, name: str) -> User:
    """The person's own name, on their login and on their member record (the identity every brand they
    joined shares). Brands keep the name they know a member by on the membership: it is not changed."""
    name = name.strip()[:120]
    user.first_name = name
    user.save(update_fields=["first_name"])
    Member.objects.filter(user=user).update(name=name)
    return user


def member_get_or_create_by_email(*, email: str, name: str = "") -> Member:
    """The member with this email (case-insensitive), created on first sight; safe under races."""
    email = email.strip().lower()
    member = Member.objects.filter(email__iexact=email).first()
    if member is not None:
        return member
    try:
        with transaction.atomic():
            return Member.objects.create(email=email, name=name)
    except IntegrityError:  # a concurrent request created it between our read and our insert
        return Member.objects.get(email__iexact=email)


def member_for_user(*, user: User) -> Member:
    """The member record behind a login, created (or claimed by email) on first use once the login's
    address is verified. Raises EmailUnverifiedError before that."""
    member = Member.objects.filter(user=user).first()
    if member is not None:
        return member
    if not user.email_verified:
        raise EmailUnverifiedError(message=f"Confirm your email address first: open the link we sent to {user.email}.")
    member = member_get_or_create_by_email(email=user.email, name=user.get_full_name())
    if member.user_id is None:
        # Conditional: two verifications of one login racing here link it once.
        Member.objects.filter(pk=member.pk, user__isnull=True).update(user=user)
        member.refresh_from_db(fields=["user"])
    if member.user_id != user.pk:
        raise ApplicationError("member_taken", "This email's member record belongs to another login.")
    return member


@transaction.atomic
def membership_join(
    *, member: Member, brand: Brand, name: str | None = None, external_id: str | None = None
) -> Membership:
    """Join a brand's fan club; joining again is harmless and re-activates a club one had left.

    `name` is what the brand will know the member by; a fan joining gives their own (the default).
    `external_id`, the brand's own id for a new member, goes into the row as it is inserted (what the
    row says then is what integrations' member.created tells).
    """
    if not brand.is_active:
        raise ApplicationError("brand_inactive", f"{brand.name} is not accepting members right now.")
    membership, created = Membership.objects.get_or_create(
        member=member,
        brand=brand,
        defaults={**_base_tier(brand), "name": member.name if name is None else name, "external_id": external_id},
    )
    if not created and membership.status == Membership.Status.LEFT:
        membership.status = Membership.Status.ACTIVE
        membership.save(update_fields=["status"])
    return membership


def _base_tier(brand: Brand) -> dict:
    """A new membership's tier: the brand's entry tier (when it asks for no points), held from now."""
    tier_id = base_tier_id(brand_id=brand.pk)
    return {"tier_id": tier_id, "tier_since": timezone.now() if tier_id is not None else None}


@transaction.atomic
def membership_enroll(*, brand: Brand, email: str = "", external_id: str = "", name: str = "") -> Membership:
    """Staff enroll someone in their brand's club (the partner portal's "add membership").

    By email (the person, found or created) and/or the brand's own id for them. The same rules as a
    till's first event: an external id the brand already uses, or an email already in the club, is
    refused rather than merged, and the member's own name is never touched (`name` is the brand's).
    """
    email = email.strip().lower()
    external_id = external_id.strip()
    if not email and not external_id:
        message = "Give an email, an external id, or both."
        raise ApplicationError("member_required", message, fields={"email": [message]})
    if external_id and Membership.objects.filter(brand=brand, external_id=external_id).exists():
        raise _external_id_taken(brand, external_id)
    member = member_get_or_create_by_email(email=email) if email else Member.objects.create()
    if Membership.objects.filter(brand=brand, member=member).exists():
        raise ApplicationError(
            "already_member",
            f"{email} is already a member of {brand.name}.",
            fields={"email": ["Already a member of this brand."]},
        )
    try:
        with transaction.atomic():
            return membership_join(member=member, brand=brand, name=name, external_id=external_id or None)
    except IntegrityError as error:  # a till or another staff member took the external id a moment ago
        raise _external_id_taken(brand, external_id) from error


def _external_id_taken(brand: Brand, external_id: str) -> ApplicationError:
    return ApplicationError(
        "external_id_taken",
        f"Another member of {brand.name} has the external id {external_id}.",
        fields={"external_id": ["Already used by another member of this brand."]},
    )


@transaction.atomic
def brand_staff_add(*, user: User, brand: Brand, role: str = BrandStaff.Role.STAFF) -> BrandStaff:
    """Give a login access to a brand's partner portal."""
    staff, _ = BrandStaff.objects.update_or_create(user=user, brand=brand, defaults={"role": role})
    if not user.is_staff:
        user.is_staff = True  # Django admin admits only is_staff logins; the brand scope does the rest
        user.save(update_fields=["is_staff"])
    return staff


@transaction.atomic
def brand_staff_remove(*, staff: BrandStaff) -> None:
    """Take a login's access to a brand's portal away; with no brand left, the portal closes to it."""
    user = staff.user
    staff.delete()
    if user.is_staff and not user.is_superuser and not BrandStaff.objects.filter(user=user).exists():
        user.is_staff = False
        user.save(update_fields=["is_staff"])


def api_key_create(*, brand: Brand, name: str) -> tuple[BrandApiKey, str]:
    """Create an API key for a brand. Returns the row and the key, which is never shown again."""
    return BrandApiKey.objects.create_key(brand=brand, name=name)


# --- many at once: what the event processor resolves for a batch ----------------------------------


MEMBER_MISMATCH = "member_mismatch"


# Joins with the list (unnest), not `= ANY(list)`: with a thousand values PostgreSQL's estimate for ANY
# makes it scan the whole member table (the lower(email) index unused), a join probes the index per value.
_BY_EXTERNAL_ID_SQL = f"""
    SELECT ms.external_id, ms.id
      FROM unnest(%b::text[]) AS v(external_id)
      JOIN {Membership._meta.db_table} ms ON ms.brand_id = %b AND ms.external_id = v.external_id
"""  # noqa: S608 - only table names are formatted in
_BY_EMAIL_SQL = f"""
    SELECT v.email, m.id, ms.id, ms.external_id
      FROM unnest(%b::text[]) AS v(email)
      JOIN {Member._meta.db_table} m ON lower(m.email) = v.email
      LEFT JOIN {Membership._meta.db_table} ms ON ms.member_id = m.id AND ms.brand_id = %b
"""  # noqa: S608 - only table names are formatted in


@dataclass
class ResolveCounts:
    """What memberships_resolve wrote: rows it inserted (not those a concurrent writer made first)."""

    members: int = 0  # members inserted
    memberships: set[int] = field(default_factory=set)  # memberships inserted
    external_ids: set[int] = field(default_factory=set)  # memberships given the external id they lacked


def memberships_resolve(
    *, brand: Brand, refs: Sequence[tuple[str, str]], counts: ResolveCounts | None = None
) -> dict[tuple[str, str], int | str]:
    """The brand's membership id for each (email, external id) as a till sends them, creating the member
    and the membership on first sight; or MEMBER_MISMATCH when the email already belongs to a member
    of the brand with another external id.

    The same rules as for one ref, applied in order (a ref sees what the ones before it created):
    an external id the brand knows wins; otherwise the member with the email (created if new, or an
    anonymous one for an external id alone) joins the brand, and an external id is recorded on a
    membership that had none. A handful of set-based statements whatever the number of refs.
    When `counts` is given, what this call inserted is added to it (the member import reports it).
    """
    plan, new_memberships, new_external_ids = _memberships_plan(brand, refs)
    created_members, inserted_members = _members_create(
        emails=[member[1] for member in new_memberships if isinstance(member, tuple) and member[0] == "email"],
        anonymous=sum(1 for member in new_memberships if isinstance(member, tuple) and member[0] == "anonymous"),
    )
    member_ids = {
        placeholder: created_members[placeholder] if isinstance(placeholder, tuple) else placeholder
        for placeholder in new_memberships
    }
    created_memberships, inserted_memberships = _memberships_create(
        brand=brand, rows=[(member_ids[member], external_id) for member, external_id in new_memberships.items()]
    )
    if new_external_ids:
        _external_ids_record(brand=brand, external_ids=new_external_ids)
    if counts is not None:
        counts.members += inserted_members
        counts.memberships |= inserted_memberships
        counts.external_ids |= new_external_ids.keys()

    resolved: dict[tuple[str, str], int | str] = {}
    for ref, membership in plan.items():
        if isinstance(membership, tuple):  # ("membership", member placeholder or id)
            membership = created_memberships.get(member_ids[membership[1]])
            if membership is None:  # lost a race to a concurrent writer: the next batch resolves it
                raise MembershipRaceError(f"could not create the membership for {ref}")
        resolved[ref] = membership
    return resolved


def membership_find(*, brand: Brand, email: str, external_id: str) -> int | str | None:
    """What memberships_resolve would give this ref, creating nothing: the membership id, MEMBER_MISMATCH,
    or None where it would create the membership (and the member, unless one has the email)."""
    found = memberships_find(brand=brand, refs=[(email, external_id)]).by_ref[(email, external_id)]
    return None if isinstance(found, MembershipToCreate) else found


@dataclass(frozen=True, slots=True)
class MembershipToCreate:
    """memberships_find's answer for a ref that memberships_resolve would create a membership for."""

    member_id: int | None  # the person (known by the email) who would join; None: a new member as well


@dataclass(frozen=True, slots=True)
class MembershipsFound:
    """What memberships_resolve would do with some refs, as memberships_find reads it."""

    by_ref: dict[tuple[str, str], int | str | MembershipToCreate]
    members: int  # members it would create
    memberships: int  # memberships it would create
    external_ids: set[int]  # existing memberships it would record an external id on


def memberships_find(*, brand: Brand, refs: Sequence[tuple[str, str]]) -> MembershipsFound:
    """memberships_resolve's reads and decisions for these refs, writing nothing (dry runs): for each ref
    the membership id, MEMBER_MISMATCH, or a MembershipToCreate; and what it would create."""
    plan, new_memberships, new_external_ids = _memberships_plan(brand, refs)
    by_ref: dict[tuple[str, str], int | str | MembershipToCreate] = {}
    for ref, membership in plan.items():
        if isinstance(membership, tuple):  # ("membership", member id or placeholder)
            member = membership[1]
            membership = MembershipToCreate(member_id=member if isinstance(member, int) else None)
        by_ref[ref] = membership
    return MembershipsFound(
        by_ref=by_ref,
        members=sum(1 for member in new_memberships if isinstance(member, tuple)),
        memberships=len(new_memberships),
        external_ids=set(new_external_ids),
    )


def _memberships_plan(
    brand: Brand, refs: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], object], dict[object, str | None], dict[int, str]]:
    """memberships_resolve's reads and decisions, before it writes anything: ref -> the membership id,
    MEMBER_MISMATCH or a placeholder of a membership to create (("membership", member id or placeholder));
    the memberships to create (member id or placeholder -> external id); the external ids to record on
    existing memberships (membership id -> external id)."""
    refs = list(dict.fromkeys(refs))
    external_ids = sorted({external_id for _, external_id in refs if external_id})
    emails = sorted({email for email, _ in refs if email})
    by_external: dict[str, object] = {}
    members: dict[str, object] = {}
    memberships: dict[object, tuple[object, str | None]] = {}
    with bulk_cursor() as cursor:
        if external_ids:
            cursor.execute(_BY_EXTERNAL_ID_SQL, [external_ids, brand.pk])
            by_external.update(cursor.fetchall())
        if emails:
            cursor.execute(_BY_EMAIL_SQL, [emails, brand.pk])
            for email, member_id, membership_id, external_id in cursor.fetchall():
                members[email] = member_id
                if membership_id is not None:
                    memberships[member_id] = (membership_id, external_id)

    # Decide in memory, in order; new rows get placeholders (("email", e) or ("anonymous", n)) until created.
    plan: dict[tuple[str, str], object] = {}
    new_memberships: dict[object, str | None] = {}  # member (id or placeholder) -> external id
    new_external_ids: dict[int, str] = {}  # existing membership id -> external id to record
    anonymous = 0
    for email, external_id in refs:
        if external_id and external_id in by_external:
            plan[(email, external_id)] = by_external[external_id]
            continue
        if email:
            member = members.setdefault(email, ("email", email))
        else:
            anonymous += 1
            member = ("anonymous", anonymous)
        existing = memberships.get(member)
        if existing is None:
            new_memberships[member] = external_id or None
            membership: object = ("membership", member)
            memberships[member] = (membership, external_id or None)
        else:
            membership, known_external_id = existing
            if external_id and known_external_id is None:
                if isinstance(membership, int):
                    new_external_ids[membership] = external_id
                else:
                    new_memberships[member] = external_id
                memberships[member] = (membership, external_id)
            elif external_id and known_external_id != external_id:
                plan[(email, external_id)] = MEMBER_MISMATCH
                continue
        if external_id:
            by_external[external_id] = membership
        plan[(email, external_id)] = membership
    return plan, new_memberships, new_external_ids


class MembershipRaceError(Exception):
    """A concurrent writer created a conflicting member or membership: retry the batch."""


def _members_create(*, emails: list[str], anonymous: int) -> tuple[dict[tuple[str, object], int], int]:
    """Create members for new emails (or find them, if created meanwhile) and `anonymous` members without
    one. Returns ("email", e) / ("anonymous", n) -> member id, and how many members were inserted."""
    created: dict[tuple[str, object], int] = {}
    inserted = 0
    now = timezone.now()
    with connection.cursor() as cursor:
        if emails:
            cursor.execute(
                f"""
                INSERT INTO {Member._meta.db_table} (email, name, created_at)
                SELECT e, '', %s FROM unnest(%s::text[]) AS e ORDER BY e
                ON CONFLICT DO NOTHING
                RETURNING email, id
                """,  # noqa: S608 - only the table name is formatted in
                [now, emails],
            )
            rows = cursor.fetchall()
            inserted += len(rows)
            created.update({("email", email): member_id for email, member_id in rows})
            # Only the emails a concurrent writer inserted first are looked up (the emails are lower-cased). A
            # join with the list, not `= ANY(list)`, probes the lower(email) index for each (_BY_EMAIL_SQL).
            taken = [email for email in emails if ("email", email) not in created]
            if taken:
                cursor.execute(
                    f"SELECT v.email, m.id FROM unnest(%s::text[]) AS v(email)"  # noqa: S608
                    f" JOIN {Member._meta.db_table} m ON lower(m.email) = v.email",
                    [taken],
                )
                created.update({("email", email): member_id for email, member_id in cursor.fetchall()})
        if anonymous:
            cursor.execute(
                f"""
                INSERT INTO {Member._meta.db_table} (email, name, created_at)
                SELECT NULL, '', %s FROM generate_series(1, %s) RETURNING id
                """,  # noqa: S608 - only the table name is formatted in
                [now, anonymous],
            )
            for number, (member_id,) in enumerate(cursor.fetchall(), start=1):
                created[("anonymous", number)] = member_id
            inserted += anonymous
    return created, inserted


def _memberships_create(*, brand: Brand, rows: list[tuple[int, str | None]]) -> tuple[dict[int, int], set[int]]:
    """Memberships of the brand for these (member id, external id) rows, created unless they exist.
    Returns member id -> membership id, and the ids of the memberships inserted."""
    if not rows:
        return {}, set()
    member_ids = [member_id for member_id, _ in rows]
    base = _base_tier(brand)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Membership._meta.db_table}
                   (member_id, brand_id, external_id, name, status, joined_at,
                    lifetime_earned, lifetime_redeemed, lifetime_expired, tier_id, tier_since)
            SELECT v.member_id, %s, v.external_id, '', %s, %s, 0, 0, 0, %s, %s
              FROM unnest(%s::bigint[], %s::text[]) AS v(member_id, external_id)
             ORDER BY v.member_id
            ON CONFLICT DO NOTHING
            RETURNING id
            """,  # noqa: S608 - only the table name is formatted in
            [
                brand.pk,
                Membership.Status.ACTIVE,
                timezone.now(),
                base["tier_id"],
                base["tier_since"],
                member_ids,
                [external_id for _, external_id in rows],
            ],
        )
        inserted = {membership_id for (membership_id,) in cursor.fetchall()}
    wanted = dict(rows)
    found = {}
    for member_id, membership_id, external_id in Membership.objects.filter(
        brand=brand, member_id__any=member_ids
    ).values_list("member_id", "pk", "external_id"):
        # A membership created meanwhile with another external id is not the one we meant.
        if wanted[member_id] is None or external_id == wanted[member_id]:
            found[member_id] = membership_id
    return found, inserted


def _external_ids_record(*, brand: Brand, external_ids: dict[int, str]) -> None:
    """Record external ids on memberships that had none (never overwriting one set meanwhile)."""
    ids = sorted(external_ids)
    try:
        with transaction.atomic():
            Membership.objects.bulk_update(
                [Membership(pk=membership_id, external_id=external_ids[membership_id]) for membership_id in ids],
                ["external_id"],
            )
    except IntegrityError as error:  # another membership of the brand took one of these ids meanwhile
        raise MembershipRaceError(str(error)) from error
