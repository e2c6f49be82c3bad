"""PostgreSQL: `points_purchase_post`, the one-round-trip posting of a plain purchase.

`services.purchase_record` computes the points in Python (the same code as its ORM path,
for every tier level the member might be on) and hands them here with the policy, category
rates and tier multipliers it used. Under the member's account lock the function checks the
replay, that those inputs are still what the tables hold (else 'stale': nothing written,
Python reloads them), then writes what the ORM path writes: ledger transaction, two
entries, the lot after paying any debt first (as `ledger._credit`), the account's figures,
the purchase, its lines, the tier activity, and the tier upgrade if the purchase earns one
(as `tier_upgrade_check`: status, history, notice; Python sends the notice after commit).

The ledger's guards (append-only entries, entries summing to zero at commit) stay on: the
function's inserts fire them like the ORM's. SQLite has no such function; there, and for
everything it does not cover, `purchase_record` takes the ORM path.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION points_purchase_post(
    p_member_id bigint,
    p_member_active boolean,
    p_has_referrer boolean,
    p_store_id bigint,
    p_receipt_no text,
    p_occurred_at timestamptz,
    p_amount numeric,
    p_channel text,
    p_fingerprint text,
    p_key text,
    p_now timestamptz,
    p_eligible numeric,
    p_available_at timestamptz,
    p_expires_at timestamptz,
    p_window_start timestamptz,
    p_policy_id bigint,
    p_base_rate numeric,
    p_birthday_multiplier numeric,
    p_pending_days integer,
    p_promotions_stack boolean,
    p_referral_on boolean,
    p_categories text[],
    p_category_rates numeric[],
    p_level_ids bigint[],
    p_level_multipliers numeric[],
    p_level_points bigint[],
    p_line_skus text[],
    p_line_categories text[],
    p_line_quantities numeric[],
    p_line_amounts numeric[],
    p_tier_policy_id bigint,
    p_valid_months integer,
    p_valid_until date,
    p_note text,
    p_notify_now boolean,
    OUT outcome text,
    OUT result_purchase_id bigint,
    OUT result_transaction_id bigint,
    OUT result_points bigint,
    OUT result_notify_history_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_account_id bigint;
    v_debt bigint;
    v_fingerprint text;
    v_policy record;
    v_level_id bigint;
    v_counts_from timestamptz;
    v_after timestamptz;
    v_rank integer;
    v_multiplier numeric;
    v_index integer;
    v_points bigint;
    v_spend numeric;
    v_earned bigint;
    v_issuance_id bigint;
    v_to_debt bigint;
    v_created boolean := false;
    v_has_status boolean;
    v_below_top boolean;
    v_target_id bigint;
    v_tier_policy record;
    v_history_id bigint;
BEGIN
    -- The member's account first (`ledger.account_lock`): every posting for this member
    -- queues here, so the replay check below sees any earlier attempt. One created here is
    -- as good as locked (a concurrent insert waits for this transaction), and is taken back
    -- with an error if the purchase is then refused, as the ORM path rolls back its own.
    -- (With the issuance account's id, the other side of the entries: one statement less.)
    SELECT a.id, a.debt, (
            SELECT s.id FROM points_account s WHERE s.kind = 'issuance' AND s.member_id IS NULL
        ) INTO v_account_id, v_debt, v_issuance_id
        FROM points_account a WHERE a.member_id = p_member_id FOR UPDATE OF a;
    IF NOT FOUND THEN
        SELECT id INTO v_issuance_id
            FROM points_account WHERE kind = 'issuance' AND member_id IS NULL;
        INSERT INTO points_account (kind, member_id, balance, debt, lifetime_earned, updated_at)
            VALUES ('member', p_member_id, 0, 0, 0, p_now)
            ON CONFLICT (member_id) DO NOTHING
            RETURNING id, debt INTO v_account_id, v_debt;
        v_created := FOUND;
        IF NOT v_created THEN
            SELECT id, debt INTO STRICT v_account_id, v_debt
                FROM points_account WHERE member_id = p_member_id FOR UPDATE;
        END IF;
    END IF;

    -- Every answer but 'created' leaves this block with nothing written.
    <<checks>>
    BEGIN
        SELECT id, fingerprint INTO result_purchase_id, v_fingerprint
            FROM points_purchase WHERE store_id = p_store_id AND receipt_no = p_receipt_no;
        IF FOUND THEN
            outcome := CASE WHEN v_fingerprint = p_fingerprint
                THEN 'replayed' ELSE 'conflict' END;
            EXIT checks;
        END IF;
        -- After the replay: a till retrying a purchase made before the member was frozen
        -- still gets its answer.
        IF NOT p_member_active THEN
            outcome := 'inactive';
            EXIT checks;
        END IF;

        -- What Python computed the points with must still be what the tables say: an
        -- earning policy or a rate edited by an administrator takes effect at once.
        SELECT id, base_rate, birthday_multiplier, pending_days, promotions_stack,
                referral_bonus > 0 AND referral_cap_per_year > 0 AS referral_on
            INTO v_policy FROM points_earningpolicy ORDER BY id LIMIT 1;
        IF v_policy.id IS DISTINCT FROM p_policy_id
            OR (v_policy.id IS NOT NULL AND (
                v_policy.base_rate <> p_base_rate
                OR v_policy.birthday_multiplier <> p_birthday_multiplier
                OR v_policy.pending_days <> p_pending_days
                OR v_policy.promotions_stack <> p_promotions_stack
                OR v_policy.referral_on <> p_referral_on))
        THEN
            outcome := 'stale';
            EXIT checks;
        END IF;
        IF cardinality(p_categories) > 0 AND EXISTS (
            SELECT 1 FROM unnest(p_categories, p_category_rates) AS c(category, rate)
                LEFT JOIN points_categoryrate r ON r.category = c.category
                WHERE r.rate IS DISTINCT FROM c.rate
        ) THEN
            outcome := 'stale';
            EXIT checks;
        END IF;

        -- A referee's first purchase pays the referrer: the ORM path locks both accounts.
        IF p_referral_on AND p_has_referrer
            AND NOT EXISTS (SELECT 1 FROM points_purchase WHERE member_id = p_member_id)
        THEN
            outcome := 'fallback';
            EXIT checks;
        END IF;

        -- The member's tier row, locked as `tier_upgrade_check` locks it (`_status_locked`)
        -- for every purchase, upgrade or not: the nightly evaluation of the member's period
        -- waits for this purchase to count, or this purchase for the evaluation to end.
        -- After the account, as there. No row is the lowest level.
        PERFORM 1 FROM tiers_membertier WHERE member_id = p_member_id FOR UPDATE;
        SELECT s.member_id IS NOT NULL, s.counts_from, l.id, l.rank, l.earn_multiplier,
                l.rank < (SELECT max(rank) FROM tiers_tierlevel)
            INTO v_has_status, v_counts_from, v_level_id, v_rank, v_multiplier, v_below_top
            FROM (SELECT p_member_id AS member_id) m
            LEFT JOIN tiers_membertier s ON s.member_id = m.member_id
            JOIN tiers_tierlevel l ON l.id = COALESCE(
                s.level_id, (SELECT id FROM tiers_tierlevel ORDER BY rank LIMIT 1)
            );
        v_index := array_position(p_level_ids, v_level_id);
        IF v_index IS NULL OR p_level_multipliers[v_index] IS DISTINCT FROM v_multiplier THEN
            outcome := 'stale';
            EXIT checks;
        END IF;
        v_points := p_level_points[v_index];

        -- `tiers.services.tier_upgrade_check`: the highest level the rolling 12 months
        -- (`activity_figures` from `qualifying_window_start`, with no end; this purchase
        -- included) qualify for, if above the member's. Written below, after the purchase.
        IF v_below_top THEN
            v_after := GREATEST(p_window_start, v_counts_from);
            SELECT f.spend, f.points, (
                    SELECT l.id FROM tiers_tierlevel l
                        WHERE l.rank > v_rank
                        AND ((l.qualify_spend > 0 AND f.spend >= l.qualify_spend)
                            OR (l.qualify_points > 0 AND f.points >= l.qualify_points))
                        ORDER BY l.rank DESC LIMIT 1
                ) INTO v_spend, v_earned, v_target_id
                FROM (
                    SELECT COALESCE(SUM(a.spend), 0)
                            + CASE WHEN p_occurred_at > v_after THEN p_amount ELSE 0 END
                            AS spend,
                        COALESCE(SUM(a.points), 0)
                            + CASE WHEN p_occurred_at > v_after THEN v_points ELSE 0 END
                            AS points
                        FROM tiers_qualifyingactivity a
                        WHERE a.member_id = p_member_id AND a.occurred_at > v_after
                ) f;
            IF v_target_id IS NOT NULL THEN
                -- The new tier's validity was computed from the tier policy: still so?
                SELECT id, valid_months INTO v_tier_policy
                    FROM tiers_tierpolicy ORDER BY id LIMIT 1;
                IF v_tier_policy.id IS DISTINCT FROM p_tier_policy_id
                    OR v_tier_policy.valid_months <> p_valid_months
                THEN
                    outcome := 'stale';
                    EXIT checks;
                END IF;
            END IF;
        END IF;

        -- The issuance account is created by the ORM path's `system_account` the first
        -- time; missing only in a new database, where that path creates it.
        IF v_points > 0 AND v_issuance_id IS NULL THEN
            outcome := 'fallback';
            EXIT checks;
        END IF;
    END checks;
    IF outcome IS NOT NULL THEN
        IF v_created THEN
            -- Takes the new account back; Python reads the answer from the message.
            RAISE EXCEPTION USING ERRCODE = 'LY001', MESSAGE = outcome;
        END IF;
        RETURN;
    END IF;

    IF v_points > 0 THEN
        INSERT INTO points_ledgertransaction (
            kind, idempotency_key, fingerprint, source, source_ref, reason, occurred_at,
            recorded_at, member_amount, actor_id, member_id, reverses_id
        ) VALUES (
            'earn', p_key, p_fingerprint, 'purchase', p_receipt_no, '', p_occurred_at,
            p_now, v_points, NULL, p_member_id, NULL
        ) RETURNING id INTO result_transaction_id;
        INSERT INTO points_entry (transaction_id, account_id, amount) VALUES
            (result_transaction_id, v_account_id, v_points),
            (result_transaction_id, v_issuance_id, -v_points);
        -- `ledger._credit`: debt is paid first, the rest goes into a lot.
        v_to_debt := LEAST(v_debt, v_points);
        IF v_points - v_to_debt > 0 THEN
            INSERT INTO points_lot (
                account_id, transaction_id, points, remaining, earned_at, available_at,
                expires_at
            ) VALUES (
                v_account_id, result_transaction_id, v_points - v_to_debt,
                v_points - v_to_debt, p_occurred_at, p_available_at, p_expires_at
            );
        END IF;
        UPDATE points_account SET
            balance = balance + v_points,
            debt = debt - v_to_debt,
            lifetime_earned = lifetime_earned + v_points,
            updated_at = p_now
            WHERE id = v_account_id;
    END IF;

    INSERT INTO points_purchase (
        channel, receipt_no, occurred_at, amount, points_used, eligible_amount, points_earned,
        returned_amount, fingerprint, recorded_at, earn_transaction_id, member_id,
        payment_transaction_id, recorded_by_id, store_id
    ) VALUES (
        p_channel, p_receipt_no, p_occurred_at, p_amount, 0, p_eligible, v_points,
        0, p_fingerprint, p_now, result_transaction_id, p_member_id,
        NULL, NULL, p_store_id
    ) RETURNING id INTO result_purchase_id;
    IF cardinality(p_line_skus) > 0 THEN
        INSERT INTO points_purchaseline (purchase_id, sku, category, quantity, amount)
            SELECT result_purchase_id, l.sku, l.category, l.quantity, l.amount
            FROM unnest(p_line_skus, p_line_categories, p_line_quantities, p_line_amounts)
                WITH ORDINALITY AS l(sku, category, quantity, amount, n)
            ORDER BY l.n;
    END IF;
    -- Tiers count the whole amount and the points earned (`tier_activity_record`).
    INSERT INTO tiers_qualifyingactivity (member_id, occurred_at, spend, points, source)
        VALUES (p_member_id, p_occurred_at, p_amount, v_points, 'purchase');

    -- The upgrade as `tiers.services._changes_apply` writes it: the status, the history
    -- (its note translated by Python, the figures put in here) and its notice.
    IF v_target_id IS NOT NULL THEN
        IF v_has_status THEN
            UPDATE tiers_membertier SET
                level_id = v_target_id,
                achieved_at = p_occurred_at,
                period_start = p_occurred_at,
                valid_until = p_valid_until,
                override_until = NULL,
                override_reason = '',
                prior_level_id = NULL,
                prior_valid_until = NULL,
                prior_period_start = NULL,
                updated_at = p_now
                WHERE member_id = p_member_id;
        ELSE
            INSERT INTO tiers_membertier (
                member_id, level_id, achieved_at, period_start, valid_until, counts_from,
                override_until, override_reason, prior_level_id, prior_valid_until,
                prior_period_start, updated_at
            ) VALUES (
                p_member_id, v_target_id, p_occurred_at, p_occurred_at, p_valid_until, NULL,
                NULL, '', NULL, NULL, NULL, p_now
            ) ON CONFLICT (member_id) DO NOTHING;
            IF NOT FOUND THEN
                -- A manual tier or the nightly sweep (which do not take the points account)
                -- wrote the member's first tier row meanwhile: all again, with that row.
                RAISE EXCEPTION USING ERRCODE = 'LY001', MESSAGE = 'retry';
            END IF;
        END IF;
        INSERT INTO tiers_tierhistory (
            member_id, from_level_id, to_level_id, reason, at, valid_until, note, actor_id,
            recorded_at
        ) VALUES (
            p_member_id, v_level_id, v_target_id, 'upgrade', p_occurred_at, p_valid_until,
            replace(replace(p_note, chr(1), v_spend::text), chr(2), v_earned::text), NULL,
            p_now
        ) RETURNING id INTO v_history_id;
        -- Outside quiet hours `tier_notice_send` runs after commit; for a member no channel
        -- reaches (`members.messaging.member_reachable`) it sends nothing and settles the
        -- notice with no channel, so that is done here, as the morning job settles them.
        -- Python sends the others' after commit.
        IF p_notify_now AND NOT EXISTS (
            SELECT 1 FROM members_member
                WHERE id = p_member_id
                AND ((consent_sms AND phone > '') OR (consent_email AND email > ''))
        ) THEN
            INSERT INTO tiers_tiernotice (history_id, member_id, sent_at, channels)
                VALUES (v_history_id, p_member_id, p_now, '[]');
        ELSE
            INSERT INTO tiers_tiernotice (history_id, member_id, sent_at, channels)
                VALUES (v_history_id, p_member_id, NULL, '[]');
            result_notify_history_id := v_history_id;
        END IF;
    END IF;

    outcome := 'created';
    result_points := v_points;
END;
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS points_purchase_post(
    bigint, boolean, boolean, bigint, text, timestamptz, numeric, text, text, text,
    timestamptz, numeric, timestamptz, timestamptz, timestamptz, bigint, numeric, numeric,
    integer, boolean, boolean, text[], numeric[], bigint[], numeric[], bigint[], text[],
    text[], numeric[], numeric[], bigint, integer, date, text, boolean
);
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0014_fillfactor_for_updated_rows"),
        ("tiers", "0004_override_prior_and_day_index"),
    ]

    operations = [migrations.RunPython(create_function, drop_function)]
