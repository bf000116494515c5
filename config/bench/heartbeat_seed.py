"""Seed viewers for the heartbeat benchmark: `POST /api/v1/live/<channel>/heartbeat` under load.

`seed(viewers)` makes (idempotently) a brand `bench` (UTC) with a `watch_minute` rule, a looping channel
`bench-tv` playing one 7-day video that went on air at a known moment, and `viewers` fans with an active
membership each. Then, for every viewer, it logs them in by creating a Django session directly (its key
is the `sessionid` cookie), gives them a CSRF secret (the `csrftoken` cookie and the `X-CSRFToken`
header), and issues a viewing lease for that session through `livestream.services.lease_issue`.

It returns what the load generator needs (`config/bench/heartbeat.lua` reads it from a file):

    {"channel": "bench-tv", "video_id": "...", "starts_at": <unix s>, "duration": <s>,
     "viewers": [{"session": "...", "csrf": "...", "lease": "..."}, ...]}

The page's position in the video is then `(now - starts_at) % duration`, which the Lua script computes
from `os.time()`. Each lease starts with a random part of a minute already counted (viewers join at
different moments: without it, every seeded viewer completes a minute in the same second, once a
minute). Seeding again reuses the viewers and gives each a new session and lease (so the first
heartbeat of each checks the member in PostgreSQL: warm up before measuring).

Command line (joins the server's database and Redis: the embedded ones of this checkout by default):

    .venv/bin/python -m config.bench.heartbeat_seed --viewers 2000 --out /tmp/heartbeat-viewers.txt
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random

from django.conf import settings

BRAND_SLUG = "bench-fans"
CHANNEL_SLUG = "bench-tv"
VIDEO_ID = "benchVideo1"  # 11 characters, like a YouTube id
VIDEO_SECONDS = 7 * 24 * 3600  # the longest position a heartbeat may report
EMAIL = "bench-viewer-{index}@bench.example"
# A day's worth of minutes: a bench never reaches the allotment, but the cap is still checked.
CAP_PER_DAY = 24 * 60


def _programme():
    from livestream import services
    from livestream.models import Channel, PlaylistItem, ScheduleEpoch
    from livestream.selectors import WATCH_MINUTE
    from loyalty.models import Brand, EarnRule

    brand, _ = Brand.objects.get_or_create(
        slug=BRAND_SLUG, defaults={"name": "Heartbeat bench", "timezone": "UTC", "points_name": "points"}
    )
    EarnRule.objects.get_or_create(
        brand=brand,
        event_type=WATCH_MINUTE,
        defaults={"name": "Watch (bench)", "points": 1, "cap_per_day": CAP_PER_DAY},
    )
    channel, _ = Channel.objects.get_or_create(
        slug=CHANNEL_SLUG, defaults={"brand": brand, "name": "Bench TV", "loop": True}
    )
    if not channel.items.exists():
        PlaylistItem.objects.create(
            channel=channel, video_id=VIDEO_ID, title="The bench video", duration_seconds=VIDEO_SECONDS, order=0
        )
    if not ScheduleEpoch.objects.filter(channel=channel).exists():
        # On air since the start of today (UTC): the position is easy to compute from the wall clock.
        midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        services.channel_schedule_publish(channel=channel, now=midnight)
    epoch = ScheduleEpoch.objects.filter(channel=channel).order_by("-starts_at", "-id").first()
    return brand, channel, epoch


def _viewers(brand, count: int):
    """`count` users, each with a member and an active membership of `brand` (created in bulk once)."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from loyalty.models import Member, Membership, User

    emails = [EMAIL.format(index=index) for index in range(count)]
    existing = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
    missing = [email for email in emails if email not in existing]
    if missing:
        password = make_password(None)  # unusable: these logins only ever have sessions made for them
        verified = timezone.now()  # only verified logins earn by watching
        User.objects.bulk_create(
            [User(email=email, password=password, email_verified_at=verified) for email in missing], batch_size=2000
        )
        existing = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
    users = {pk: email for email, pk in existing.items()}
    members = dict(Member.objects.filter(user_id__in=users).values_list("user_id", "pk"))
    new_members = [Member(user_id=pk, email=users[pk]) for pk in users if pk not in members]
    if new_members:
        Member.objects.bulk_create(new_members, batch_size=2000)
        members = dict(Member.objects.filter(user_id__in=users).values_list("user_id", "pk"))
    mine = Membership.objects.filter(brand=brand, member_id__in=members.values())
    joined = set(mine.values_list("member_id", flat=True))
    Membership.objects.bulk_create(
        [Membership(member_id=pk, brand=brand) for pk in members.values() if pk not in joined], batch_size=2000
    )
    mine.update(status=Membership.Status.ACTIVE)
    memberships = {membership.member.user_id: membership for membership in mine.select_related("member__user", "brand")}
    return [memberships[existing[email]] for email in emails]


def _session(user) -> str:
    """A logged-in session for `user`, as `django.contrib.auth.login` would leave it; returns its key."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()  # the row in PostgreSQL and the copy in the cache, like a real login
    return session.session_key


def _stagger(lease_id: str, rng: random.Random) -> None:
    """Start the lease with a random part of a minute already counted, as a viewer who joined at some
    moment of the minute: otherwise every seeded viewer, counting at the same pace, completes a minute in
    the same second, once a minute (a burst real audiences do not send)."""
    from livestream import leases

    minute_ms = int(float(settings.LIVESTREAM_MINUTE_SECONDS) * 1000)
    leases._redis().hset(leases._LEASE_KEY.format(lease_id=lease_id), "carry_ms", rng.randrange(minute_ms))


def seed(viewers: int, *, stagger: bool = True) -> dict:
    """Seed `viewers` logged-in members with a live lease each into the current database (see the module
    docstring); returns what the load generator needs. `stagger`: spread the viewers' minutes over the
    minute (see _stagger)."""
    from django.utils.crypto import get_random_string

    from livestream import clock, services

    _brand, channel, epoch = _programme()
    channel = type(channel).objects.select_related("brand").get(pk=channel.pk)
    rng = random.Random(viewers)
    out = []
    for membership in _viewers(channel.brand, viewers):
        session_key = _session(membership.member.user)
        grant = services.lease_issue(channel=channel, membership=membership, session_key=session_key)
        if stagger:
            _stagger(grant.claims.lease_id, rng)
        out.append({"session": session_key, "csrf": get_random_string(32), "lease": grant.token})
    return {
        "channel": channel.slug,
        "video_id": VIDEO_ID,
        "starts_at": clock.to_ms(epoch.starts_at) // 1000,
        "duration": VIDEO_SECONDS,
        "viewers": out,
    }


def write(seeded: dict, path: str) -> None:
    """The file heartbeat.lua reads: a header line, then one viewer a line (session, csrf, lease)."""
    with open(path, "w") as handle:
        handle.write(f"{seeded['channel']} {seeded['video_id']} {seeded['starts_at']} {seeded['duration']}\n")
        for viewer in seeded["viewers"]:
            handle.write(f"{viewer['session']} {viewer['csrf']} {viewer['lease']}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--out", default="/tmp/heartbeat-viewers.txt")  # noqa: S108 - a throwaway bench file
    parser.add_argument("--no-stagger", action="store_true", help="all viewers start their minute together")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    seeded = seed(args.viewers, stagger=not args.no_stagger)
    write(seeded, args.out)
    print(f"{len(seeded['viewers'])} viewers of {seeded['channel']} written to {args.out}")


if __name__ == "__main__":
    main()
