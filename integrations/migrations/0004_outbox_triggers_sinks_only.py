"""New memberships and tier changes are written to the outbox only for brands with a sink (an enabled
webhook endpoint, or an analytics project), as the ledger's postings are (integrations.receivers): a
brand with no sink keeps no messages that no sink would ever be given."""

from django.db import migrations

_HAS_SINK = """
       AND (EXISTS (SELECT 1 FROM integrations_webhookendpoint w WHERE w.brand_id = n.brand_id AND w.enabled)
            OR EXISTS (SELECT 1 FROM integrations_brandintegration i
                        WHERE i.brand_id = n.brand_id AND i.analytics_secret <> ''))"""


def _functions(only_with_sinks: bool) -> str:
    where = _HAS_SINK if only_with_sinks else ""
    return f"""
CREATE OR REPLACE FUNCTION integrations_membership_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integrations_outboxmessage (uid, brand_id, type, membership_id, data, created_at, dispatched)
    SELECT gen_random_uuid(), n.brand_id, 'member.created', n.id,
           jsonb_build_object(
               'member', jsonb_build_object('id', n.id, 'external_id', n.external_id, 'email', p.email),
               'tier', t.name, 'status', n.status),
           COALESCE(n.joined_at, now()), false
      FROM new_rows n
      JOIN loyalty_member p ON p.id = n.member_id
      LEFT JOIN loyalty_tier t ON t.id = n.tier_id
     WHERE true{where};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION integrations_tier_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integrations_outboxmessage (uid, brand_id, type, membership_id, data, created_at, dispatched)
    SELECT gen_random_uuid(), n.brand_id, 'tier.changed', n.membership_id,
           jsonb_build_object(
               'member', jsonb_build_object('id', n.membership_id),
               'from', NULLIF(n.from_name, ''), 'to', NULLIF(n.to_name, ''),
               'reason', n.reason, 'qualifying_points', n.qualifying_points),
           n.created_at, false
      FROM new_rows n
     WHERE true{where};
    RETURN NULL;
END $$;
"""  # noqa: S608 - a constant condition is formatted in


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_outbox_created_brin")]

    operations = [migrations.RunSQL(_functions(only_with_sinks=True), _functions(only_with_sinks=False))]
