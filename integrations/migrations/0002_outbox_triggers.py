"""New memberships and tier changes tell the outbox from the database itself: statement-level triggers
over the inserted rows, in the inserting transaction, whatever code path inserts them (the processor's
bulk resolution, an enrolment in the portal, a sign-up, a network join, an import)."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION integrations_membership_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integrations_outboxmessage (uid, brand_id, type, membership_id, data, created_at, dispatched)
    SELECT gen_random_uuid(), n.brand_id, 'member.created', n.id,
           jsonb_build_object(
               'member', jsonb_build_object('id', n.id, 'external_id', n.external_id, 'email', p.email),
               'tier', t.name, 'status', n.status),
           COALESCE(n.joined_at, now()), false
      FROM new_rows n
      JOIN loyalty_member p ON p.id = n.member_id
      LEFT JOIN loyalty_tier t ON t.id = n.tier_id;
    RETURN NULL;
END $$;

CREATE TRIGGER integrations_membership_created AFTER INSERT ON loyalty_membership
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION integrations_membership_created();

CREATE FUNCTION integrations_tier_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integrations_outboxmessage (uid, brand_id, type, membership_id, data, created_at, dispatched)
    SELECT gen_random_uuid(), n.brand_id, 'tier.changed', n.membership_id,
           jsonb_build_object(
               'member', jsonb_build_object('id', n.membership_id),
               'from', NULLIF(n.from_name, ''), 'to', NULLIF(n.to_name, ''),
               'reason', n.reason, 'qualifying_points', n.qualifying_points),
           n.created_at, false
      FROM new_rows n;
    RETURN NULL;
END $$;

CREATE TRIGGER integrations_tier_changed AFTER INSERT ON loyalty_tierchange
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION integrations_tier_changed();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS integrations_membership_created ON loyalty_membership;
DROP FUNCTION IF EXISTS integrations_membership_created();
DROP TRIGGER IF EXISTS integrations_tier_changed ON loyalty_tierchange;
DROP FUNCTION IF EXISTS integrations_tier_changed();
"""


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial"), ("loyalty", "0015_economics_rollups")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
