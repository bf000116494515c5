"""Importing a brand's members and their balances from a CSV file (`manage.py import_members`, and the
partner portal's *Memberships -> Import CSV*).

A brand moving to Tally brings its members in a spreadsheet: `email`, `external_id`, `name`, `balance`,
`tier` (a header row first, columns in any order). Every row is checked first (import_file_parse); a bad
row is reported by its line in the file and skipped, the others are applied, in chunks of CHUNK rows,
one database transaction per chunk:

1. resolve the rows' members with the event processor's own memberships_resolve (found by external id
   or email, members, memberships and external ids created in bulk), outside the chunk's transaction as
   the processor does: its statements then never hold row locks while the chunk waits for others;
2. in the chunk's transaction, the processor's lock order: lock the memberships (id order), read their
   state (name, member email, an earlier import), decide every row, write the tiers (TierChange reason
   "import") and names, create the missing wallets, lock the balance rows (account-id order), and post
   every balance with one transactions_post call.

Each balance is one ledger transaction of kind `import` from the brand's *adjustments* account to the
wallet, keyed `import:<membership id>`: importing a file again posts nothing, and a member can be given
an imported balance once. Adjustments, not issuance: the economics rollups count it as "adjusted"
(loyalty.signals), so migrated balances are not points issued in the import's range (which would skew
the redemption and breakage rates and the tiers' return rates) nor make every member "active" that
week; economics.selectors.outstanding_now (minus the brand's four accounts) still equals the wallets.
The wallet credit starts a points lot in the month of the import (expiry counts from there).

A dry run (and the portal's preview) makes the same reads and decisions without a write or a lock, in a
transaction PostgreSQL keeps read-only (config.db.read_only_atomic), with memberships_find standing in
for memberships_resolve: it reports conflicts with earlier imports too.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connection, transaction
from django.utils import timezone

from config.db import bulk_cursor, read_only_atomic
from config.errors import ApplicationError
from ledger.models import Account, Balance, Entry
from ledger.models import Transaction as LedgerTransaction
from ledger.services import Leg, Posting, transactions_post
from loyalty import engine, locks
from loyalty.models import Brand, Member, Membership, PointsLot, Tier, TierChange
from loyalty.selectors import base_tier_id
from loyalty.services.accounts import brand_account
from loyalty.services.members import (
    MEMBER_MISMATCH,
    MembershipRaceError,
    MembershipToCreate,
    ResolveCounts,
    memberships_find,
    memberships_resolve,
)
from loyalty.services.processing import program_of, tier_moves_write, wallets_ensure

COLUMNS = ("email", "external_id", "name", "balance", "tier")
CHUNK = 1_000  # rows per database transaction: the processor's batch size
PREVIEW_ROWS = 20
MAX_BALANCE = 1_000_000_000  # points one member may be given: a bigger figure is a spreadsheet slip
IMPORT_KIND = "import"
IMPORT_MEMO = "Balance brought over from the previous program"
# memberships_resolve loses a race to a concurrent creator now and then (two imports of one file, a till
# naming the same new member): the next attempt finds what the other created.
RESOLVE_ATTEMPTS = 5
EMAIL = EmailValidator()

# A progress callback: (rows done, of how many).
Progress = Callable[[int, int], None]


class ImportFileError(ApplicationError):
    """The file as a whole cannot be imported (not UTF-8, not CSV, a bad header)."""

    status_code = 422
    code = "import_file_invalid"


def import_key(membership_id: int) -> str:
    """The ledger idempotency key of a membership's imported balance: one import per membership, ever."""
    return f"{IMPORT_KIND}:{membership_id}"


# --- reading the file ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportRow:
    """A row that passed the checks, as it will be applied."""

    line: int  # its line in the file (the header is line 1)
    email: str  # lower-cased, "" when not given
    external_id: str
    name: str  # "" when not given: the membership keeps its name
    balance: int
    tier_id: int | None  # None when blank: a new membership gets the entry tier, an existing one keeps its own


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str


@dataclass
class ParsedFile:
    rows: list[ImportRow]
    problems: list[RowProblem]
    read: int  # data rows (blank lines are not counted)
    sha256: str


def import_file_parse(*, brand: Brand, content: bytes) -> ParsedFile:
    """Check every row of a members CSV against the brand. Raises ImportFileError for a file that cannot be
    read as a whole; a bad row is a RowProblem, and so is a second row of a member already in the file
    (the first row of a member wins)."""
    text = _decode(content)
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportFileError(
                message="The file is empty or its first line is blank: the first line names the columns "
                f"({', '.join(COLUMNS)})."
            )
        names = _header(header)
        tiers = _tiers(brand)
        rows: list[ImportRow] = []
        problems: list[RowProblem] = []
        emails: dict[str, int] = {}
        external_ids: dict[str, int] = {}
        read = 0
        while True:
            line = reader.line_num + 1  # a quoted value may span lines: the row starts here
            record = next(reader, None)
            if record is None:
                break
            if not any(cell.strip() for cell in record):
                continue
            read += 1
            row, reasons = _row(line, record, names, tiers)
            if row is not None:
                first = emails.get(row.email) if row.email else None
                if first is None and row.external_id:
                    first = external_ids.get(row.external_id)
                if first is not None:
                    reasons = [f"the same member as line {first} (the first row of a member is the one imported)"]
                else:
                    if row.email:
                        emails[row.email] = line
                    if row.external_id:
                        external_ids[row.external_id] = line
                    rows.append(row)
            if reasons:
                problems.append(RowProblem(line, "; ".join(reasons)))
    except csv.Error as error:
        raise ImportFileError(message=f"Line {reader.line_num} is not CSV: {error}.") from None
    return ParsedFile(rows=rows, problems=problems, read=read, sha256=hashlib.sha256(content).hexdigest())


def _decode(content: bytes) -> str:
    try:
        text = content.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte order mark
    except UnicodeDecodeError as error:
        raise ImportFileError(
            message=f"The file is not UTF-8 text (byte {error.start + 1} is not): save it as CSV (UTF-8). "
            "An Excel workbook (.xlsx) is not a CSV file."
        ) from None
    if "\x00" in text:
        raise ImportFileError(message="The file is not CSV text (it contains NUL bytes): save it as CSV (UTF-8).")
    return text


def _delimiter(text: str) -> str:
    """Commas, or what a spreadsheet in a comma-decimal locale writes (semicolons) or a tab-separated export:
    read off the header line, which names no column with any of them in it."""
    first = text.split("\n", 1)[0]
    for candidate in (",", ";", "\t"):
        if candidate in first:
            return candidate
    return ","


def _header(header: list[str]) -> list[str | None]:
    """The columns, by position: a known column's name, or None for an unnamed one (a spreadsheet's trailing
    separators). Refuses unknown and repeated columns, and a header without an identifier."""
    names: list[str | None] = []
    unknown = []
    for cell in header:
        name = cell.strip().lower().replace(" ", "_").replace("-", "_")
        if not name:
            names.append(None)
        elif name in COLUMNS:
            if name in names:
                raise ImportFileError(message=f"The column {name} appears twice on line 1.")
            names.append(name)
        else:
            unknown.append(cell.strip())
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise ImportFileError(
            message=f"Unknown column{'s' if len(unknown) > 1 else ''} {listed} on line 1: the columns are "
            f"{', '.join(COLUMNS)} (email or external_id, at least one; the others optional)."
        )
    if "email" not in names and "external_id" not in names:
        raise ImportFileError(message="Line 1 names neither an email nor an external_id column: one is needed.")
    return names


def _tiers(brand: Brand) -> dict[str, tuple[int, str]]:
    """The brand's tiers by name: exact names first, then lower-cased ones (a file's "gold" is Gold)."""
    tiers = list(Tier.objects.filter(brand=brand).order_by("rank").values_list("pk", "name"))
    found: dict[str, tuple[int, str]] = {}
    for tier_id, name in tiers:
        found.setdefault(name.lower(), (tier_id, name))
    for tier_id, name in tiers:
        found[name] = (tier_id, name)
    return found


def _text(value: str, column: str, limit: int, reasons: list[str]) -> str:
    value = value.strip()
    if len(value) > limit:
        reasons.append(f"{column}: more than {limit} characters")
        return ""
    return value


def _row(
    line: int, record: list[str], names: list[str | None], tiers: dict[str, tuple[int, str]]
) -> tuple[ImportRow | None, list[str]]:
    reasons: list[str] = []
    if len(record) > len(names):
        reasons.append(f"{len(record)} values, but line 1 names {len(names)} columns")
        return None, reasons
    values = dict.fromkeys(COLUMNS, "")
    for name, value in zip(names, record, strict=False):  # a short row: the missing values are blank
        if name is None:
            if value.strip():
                reasons.append(f"a value ({value.strip()[:40]!r}) under a column without a name")
        else:
            values[name] = value

    email = _text(values["email"], "email", 254, reasons).lower()
    if email:
        try:
            EMAIL(email)
        except ValidationError:
            reasons.append(f"email: {email[:80]!r} is not a valid email address")
            email = ""
    external_id = _text(values["external_id"], "external_id", 120, reasons)
    name = _text(values["name"], "name", 120, reasons)
    if not email and not external_id and not reasons:
        reasons.append("no email and no external_id: one is needed to know the member")

    raw = values["balance"].strip()
    balance = 0
    if raw:
        if raw.isascii() and raw.isdigit():
            balance = int(raw)
            if balance > MAX_BALANCE:
                reasons.append(f"balance: {balance} is more than a member may be given ({MAX_BALANCE})")
        elif raw.startswith("-") and raw[1:].strip().isascii() and raw[1:].strip().isdigit():
            reasons.append(f"balance: {raw} is negative")
        else:
            reasons.append(f"balance: {raw[:40]!r} is not a whole number of points")

    tier_id = None
    tier = values["tier"].strip()
    if tier:
        found = tiers.get(tier) or tiers.get(tier.lower())
        if found is None:
            known = ", ".join(name for key, (_, name) in tiers.items() if key == name) or "none"
            reasons.append(f"tier: {tier[:60]!r} is not one of the brand's tiers ({known})")
        else:
            tier_id = found[0]
    if reasons:
        return None, reasons
    return ImportRow(line, email, external_id, name, balance, tier_id), reasons


# --- applying it -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowPreview:
    """A row as the import applies it (the portal's preview)."""

    line: int
    email: str
    external_id: str
    name: str  # the name the membership will have
    balance: int  # the points posted (0: none)
    tier: str  # the tier the membership will have
    member: str  # "new member", "joins the club" (a person Tally knows) or "already a member"
    note: str  # what else: "already imported", "tier set", ...


@dataclass
class ImportReport:
    brand: str
    dry_run: bool
    sha256: str = ""
    rows_read: int = 0
    members_created: int = 0
    memberships_created: int = 0
    external_ids_set: int = 0  # on memberships that had none
    balances_posted: int = 0
    points_posted: int = 0
    tiers_set: int = 0
    names_set: int = 0
    unchanged: int = 0  # rows that were applied and changed nothing (imported before, say)
    skipped: list[RowProblem] = field(default_factory=list)
    preview: list[RowPreview] = field(default_factory=list)  # dry runs: the first PREVIEW_ROWS rows applied
    notes: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return self.rows_read - len(self.skipped)

    def lines(self) -> list[str]:
        verb = "would be " if self.dry_run else ""
        lines = [
            f"{self.brand}: {self.rows_read} rows read, {self.applied} applied, {len(self.skipped)} skipped"
            + (" (dry run: nothing was written)" if self.dry_run else ""),
            f"  members {verb}created: {self.members_created}, memberships {verb}created: "
            f"{self.memberships_created}, external ids {verb}set: {self.external_ids_set}",
            f"  balances {verb}posted: {self.balances_posted} ({self.points_posted} points)",
            f"  tiers {verb}set: {self.tiers_set}, names {verb}set: {self.names_set}",
            f"  unchanged: {self.unchanged}",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  line {problem.line}: {problem.reason}" for problem in self.skipped]
        return lines


@dataclass(slots=True)
class _State:
    """A membership as the import finds it (None for one the import creates)."""

    status: str
    tier_id: int | None
    name: str
    email: str | None  # the member's own
    imported: int | None  # the points an earlier import gave it


@dataclass(slots=True)
class _Outcome:
    row: ImportRow
    membership_id: int | None  # None: a dry run's membership to create
    post: int
    tier_from: int | None
    tier_to: int | None  # None: the tier stays
    name: str | None  # None: the name stays
    member: str
    imported_before: bool


@dataclass
class _Run:
    brand: Brand
    report: ImportReport
    program: engine.Program
    base_tier: int | None
    tier_names: dict[int, str]
    tier_thresholds: dict[int, int]
    by: str
    adjustments: Account | None = None
    seen: dict[object, int] = field(default_factory=dict)  # membership (id, or a dry run's ref) -> its line
    earned_tiers: int = 0  # memberships given a tier that needs qualifying points


def members_import(
    *,
    brand: Brand,
    content: bytes,
    dry_run: bool = False,
    by: str = "",
    progress: Progress | None = None,
    chunk_size: int = CHUNK,
) -> ImportReport:
    """Import a members CSV into `brand` (see the module docstring): what it did, or with `dry_run` what it
    would do, writing nothing. `by` says who imported it (on each posting). Raises ImportFileError for a
    file that cannot be read; bad rows are reported in `skipped` and left out."""
    parsed = import_file_parse(brand=brand, content=content)
    report = ImportReport(
        brand=brand.slug, dry_run=dry_run, sha256=parsed.sha256, rows_read=parsed.read, skipped=list(parsed.problems)
    )
    program = program_of(brand)
    run = _Run(
        brand=brand,
        report=report,
        program=program,
        base_tier=base_tier_id(brand_id=brand.pk),
        tier_names={tier.id: tier.name for tier in program.tiers},
        tier_thresholds={tier.id: tier.threshold for tier in program.tiers},
        by=by,
    )
    total, done = len(parsed.rows), 0
    chunks = [parsed.rows[start : start + chunk_size] for start in range(0, total, chunk_size)]
    if dry_run:
        with read_only_atomic():  # PostgreSQL refuses any write a dry run should never make
            for rows in chunks:
                _chunk_dry(run, rows)
                done += len(rows)
                if progress:
                    progress(done, total)
    else:
        run.adjustments = brand_account(brand=brand, kind=Account.Kind.ADJUSTMENTS)
        with locks.brand_import_lock(brand.pk):
            for number, rows in enumerate(chunks, start=1):
                _chunk_apply(run, rows)
                done += len(rows)
                if number & (number - 1) == 0:  # after chunks 1, 2, 4, 8...
                    _statistics_refresh(done)
                if progress:
                    progress(done, total)
    report.skipped.sort(key=lambda problem: problem.line)
    if run.earned_tiers and program.tier_downgrade != engine.END_OF_PERIOD:
        # The tier comes with no qualifying points: under "at once" the daily tier pass takes it back.
        members = "1 member" if run.earned_tiers == 1 else f"{run.earned_tiers} members"
        report.notes.append(
            f"{members} {'would be' if dry_run else 'were'} given a tier that needs qualifying points. This "
            "brand's members move down at once when their points fall short, so the next daily run moves them "
            "to the tier their points earn; keep imported tiers by choosing the end-of-period policy on the "
            "brand's page first."
        )
    return report


def _chunk_dry(run: _Run, rows: list[ImportRow]) -> None:
    found = memberships_find(brand=run.brand, refs=[(row.email, row.external_id) for row in rows])
    ids = sorted({membership for membership in found.by_ref.values() if isinstance(membership, int)})
    states = _states(ids)
    outcomes = []
    for row in rows:
        membership = found.by_ref[(row.email, row.external_id)]
        if isinstance(membership, MembershipToCreate):
            member = "joins the club" if membership.member_id is not None else "new member"
            outcome = _decide(run, row, None, ("new", row.email, row.external_id), None, member)
        else:
            outcome = _decide(run, row, membership, membership, states.get(membership), "already a member")
        if outcome is not None:
            outcomes.append(outcome)
    report = run.report
    report.members_created += found.members
    report.memberships_created += found.memberships
    report.external_ids_set += len(found.external_ids)
    _count(run, outcomes, created=None, external_ids=found.external_ids)
    for outcome in outcomes[: max(0, PREVIEW_ROWS - len(report.preview))]:
        report.preview.append(_preview(run, outcome))


def _chunk_apply(run: _Run, rows: list[ImportRow]) -> None:
    refs = [(row.email, row.external_id) for row in rows]
    counts = ResolveCounts()
    resolved = _resolve(run.brand, refs, counts)
    report = run.report
    report.members_created += counts.members
    report.memberships_created += len(counts.memberships)
    report.external_ids_set += len(counts.external_ids)
    with transaction.atomic():
        # The processor's order: membership rows (id order), then balance rows (account-id order). Under
        # the membership locks, an earlier import of a member (read next) cannot be posted meanwhile.
        ids = sorted({membership for membership in resolved.values() if isinstance(membership, int)})
        locked = locks.memberships_lock_rows(ids)
        states = _states(ids)
        outcomes = []
        for row in rows:
            membership = resolved[(row.email, row.external_id)]
            state = states.get(membership) if isinstance(membership, int) else None
            outcome = _decide(run, row, membership, membership, state, "")
            if outcome is not None:
                outcomes.append(outcome)
        now = timezone.now()
        # Tiers before the postings: the rollups record a move under the member's tier at the time.
        moves = [
            engine.TierMove(outcome.membership_id, outcome.tier_from, outcome.tier_to, TierChange.Reason.IMPORT, 0)
            for outcome in outcomes
            if outcome.tier_to is not None
        ]
        tier_moves_write(program=run.program, brand_id=run.brand.pk, moves=moves, now=now)
        _names_write({outcome.membership_id: outcome.name for outcome in outcomes if outcome.name is not None})
        posting = [outcome for outcome in outcomes if outcome.post]
        posted = _post(run, posting, {outcome.membership_id: locked[outcome.membership_id] for outcome in posting})
    _count(run, outcomes, created=counts.memberships, external_ids=counts.external_ids, posted=posted)


# The tables an import grows. A brand's first import can make them many times bigger within a minute, and
# every chunk's plans are only as good as PostgreSQL's statistics, which autovacuum refreshes a minute or
# more behind (or never, where it is off): planned for the table it was, a chunk scans the table it is.
_GROWN_TABLES = [
    model._meta.db_table
    for model in (Member, Membership, Account, Balance, LedgerTransaction, Entry, PointsLot, TierChange)
]


def _statistics_refresh(written: int) -> None:
    """ANALYZE the grown tables PostgreSQL counts fewer than five times `written` rows in (or never
    counted): a sample of each, cheap, and a big table an import barely grows is left alone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND reltuples < %s",
            [_GROWN_TABLES, written * 5],
        )
        stale = [row[0] for row in cursor.fetchall()]
        if stale:
            cursor.execute(f"ANALYZE {', '.join(stale)}")


def _resolve(brand: Brand, refs: list[tuple[str, str]], counts: ResolveCounts) -> dict[tuple[str, str], int | str]:
    for attempt in range(1, RESOLVE_ATTEMPTS + 1):
        try:
            return memberships_resolve(brand=brand, refs=refs, counts=counts)
        except MembershipRaceError:
            if attempt == RESOLVE_ATTEMPTS:
                raise
            time.sleep(0.02 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _decide(
    run: _Run, row: ImportRow, found: int | str | None, key: object, state: _State | None, member: str
) -> _Outcome | None:
    """What a row does to its membership (None: it is skipped, and reported)."""
    problem = None
    if found == MEMBER_MISMATCH:
        problem = f"{row.email} is a member already, under another external id than {row.external_id}"
    elif state is not None and row.email and state.email and state.email.lower() != row.email:
        problem = f"the external id {row.external_id} is another member's (not {row.email})"
    elif key in run.seen:
        problem = f"the same member as line {run.seen[key]} (the first row of a member is the one imported)"
    elif state is not None and state.status != Membership.Status.ACTIVE:
        problem = f"the membership is {state.status}: make it active in the portal first"
    elif state is not None and state.imported is not None and state.imported != row.balance:
        problem = f"already imported with {state.imported} points; adjust it in the portal"
    if problem is not None:
        run.report.skipped.append(RowProblem(row.line, problem))
        return None
    run.seen[key] = row.line
    if state is None:  # created by this import: the entry tier, no name, nothing imported
        state = _State(Membership.Status.ACTIVE, run.base_tier, "", row.email or None, None)
    return _Outcome(
        row=row,
        membership_id=found if isinstance(found, int) else None,
        post=row.balance if state.imported is None else 0,
        tier_from=state.tier_id,
        tier_to=row.tier_id if row.tier_id is not None and row.tier_id != state.tier_id else None,
        name=row.name if row.name and row.name != state.name else None,
        member=member,
        imported_before=state.imported is not None,
    )


_IMPORTED_SQL = f"""
    SELECT t.idempotency_key, e.amount
      FROM unnest(%b::text[]) AS k(key)
      JOIN {LedgerTransaction._meta.db_table} t ON t.idempotency_key = k.key
      JOIN {Entry._meta.db_table} e ON e.transaction_id = t.id AND e.amount > 0
"""  # noqa: S608 - only table names are formatted in


def _states(ids: list[int]) -> dict[int, _State]:
    """The memberships' state, with the points an earlier import gave each (its wallet leg)."""
    if not ids:
        return {}
    rows = Membership.objects.filter(pk__any=ids).values_list("pk", "status", "tier_id", "name", "member__email")
    states = {pk: _State(status, tier_id, name, email, None) for pk, status, tier_id, name, email in rows}
    with bulk_cursor() as cursor:
        cursor.execute(_IMPORTED_SQL, [[import_key(pk) for pk in ids]])
        for key, amount in cursor.fetchall():
            states[int(key.rsplit(":", 1)[1])].imported = amount
    return states


_NAMES_SQL = f"""
    UPDATE {Membership._meta.db_table} AS m SET name = v.name
      FROM unnest(%b::bigint[], %b::text[]) AS v(id, name)
     WHERE m.id = v.id
"""  # noqa: S608 - only the table name is formatted in


def _names_write(names: dict[int, str]) -> None:
    if names:
        ids = sorted(names)
        with bulk_cursor() as cursor:
            cursor.execute(_NAMES_SQL, [ids, [names[pk] for pk in ids]])


def _post(run: _Run, outcomes: list[_Outcome], memberships: dict[int, locks.LockedMembership]) -> set[int]:
    """Post the balances, one transaction per member, in one transactions_post call. Returns the
    memberships whose balance was posted now (not found posted already)."""
    if not outcomes:
        return set()
    wallets = wallets_ensure(run.brand, memberships)
    heads = locks.balances_lock([*wallets.values(), run.adjustments.pk])
    source = heads[run.adjustments.pk]
    postings = [
        Posting(
            idempotency_key=import_key(outcome.membership_id),
            kind=IMPORT_KIND,
            entries=[Leg(source, -outcome.post), Leg(heads[wallets[outcome.membership_id]], outcome.post)],
            memo=IMPORT_MEMO,
            metadata={"line": outcome.row.line, "by": run.by or "import"},
        )
        for outcome in outcomes
    ]
    results = transactions_post(postings=postings, locked=heads)
    return {outcome.membership_id for outcome, result in zip(outcomes, results, strict=True) if result.created}


def _count(
    run: _Run,
    outcomes: list[_Outcome],
    *,
    created: set[int] | None,
    external_ids: set[int],
    posted: set[int] | None = None,
) -> None:
    """Add a chunk's outcomes to the report. `created`: the memberships this chunk created (None in a dry
    run, whose new memberships have no id); `posted`: the balances posted (None: a dry run's, all)."""
    report = run.report
    for outcome in outcomes:
        membership = outcome.membership_id
        new = membership is None if created is None else membership in created
        balance = outcome.post and (posted is None or membership in posted)
        if balance:
            report.balances_posted += 1
            report.points_posted += outcome.post
        report.tiers_set += outcome.tier_to is not None
        run.earned_tiers += outcome.tier_to is not None and run.tier_thresholds.get(outcome.tier_to, 0) > 0
        report.names_set += outcome.name is not None
        if not (new or balance or outcome.tier_to is not None or outcome.name is not None) and (
            membership not in external_ids
        ):
            report.unchanged += 1


def _preview(run: _Run, outcome: _Outcome) -> RowPreview:
    row = outcome.row
    tier = outcome.tier_to if outcome.tier_to is not None else outcome.tier_from
    notes = []
    if outcome.imported_before:
        notes.append("imported before: nothing posted")
    if outcome.tier_to is not None and outcome.member == "already a member":
        notes.append(f"tier {run.tier_names.get(outcome.tier_from, 'none')} -> {run.tier_names.get(tier, 'none')}")
    if outcome.name is not None and outcome.member == "already a member":
        notes.append("name set")
    return RowPreview(
        line=row.line,
        email=row.email,
        external_id=row.external_id,
        name=row.name,
        balance=outcome.post,
        tier=run.tier_names.get(tier, "") if tier is not None else "",
        member=outcome.member,
        note="; ".join(notes),
    )


# --- the portal's two steps: an upload kept between its preview and its confirmation --------------------

UPLOAD_TTL = dt.timedelta(minutes=30)
# The portal applies a file in its request (about 45 s for 100,000 rows): bigger files, manage.py import_members.
PORTAL_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    user_id: int
    brand_id: int
    name: str
    sha256: str
    content: bytes

    def as_dict(self) -> dict:
        # Kept as plain values, not a pickled class: a deploy between preview and confirm still reads it.
        return dataclasses.asdict(self)


def _upload_key(token: str) -> str:
    return f"import:upload:{token}"


def upload_keep(*, user_id: int, brand: Brand, name: str, content: bytes) -> str:
    """Keep an uploaded file for its confirmation (Redis, UPLOAD_TTL): returns the random token that
    names it. Only the login that uploaded it can take it back."""
    token = secrets.token_urlsafe(24)
    upload = Upload(user_id, brand.pk, name[:200], hashlib.sha256(content).hexdigest(), content)
    cache.set(_upload_key(token), upload.as_dict(), timeout=int(UPLOAD_TTL.total_seconds()))
    return token


def upload_take(*, token: str, user_id: int, sha256: str) -> Upload | None:
    """The upload `token` names, once: None when it expired, was taken already, is another login's, or is
    not the file that was previewed (`sha256`)."""
    if not token or len(token) > 64:
        return None
    key = _upload_key(token)
    kept = cache.get(key)
    try:
        upload = Upload(**kept)
    except TypeError:  # expired (None), or not an upload
        return None
    if upload.user_id != user_id or upload.sha256 != sha256:
        return None
    if not cache.delete(key):  # a second click of the confirm button got here first
        return None
    return upload
