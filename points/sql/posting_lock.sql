-- points_posting_lock: a live purchase's first round trip (points/posting/writers.py).
-- It decides nothing: it locks the members' points accounts in id order (as
-- ledger_bulk.accounts_lock_rows does) and then, in a statement of its own (so with a
-- snapshot taken after the locks, seeing a purchase committed by the posting it waited
-- for), reads the receipt recorded before. Rows: the accounts (account_id, member_id,
-- debt), then the receipt if recorded (purchase_id, fingerprint). Python answers
-- 'replayed' or 'conflict' and creates a missing account.
DROP FUNCTION IF EXISTS points_posting_lock(bigint[], bigint, text);

CREATE FUNCTION points_posting_lock(p_member_ids bigint[], p_store_id bigint, p_receipt_no text)
RETURNS TABLE (account_id bigint, member_id bigint, debt bigint, purchase_id bigint, fingerprint text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY
        SELECT a.id::bigint, a.member_id::bigint, a.debt::bigint, NULL::bigint, NULL::text
        FROM points_account a WHERE a.member_id = ANY(p_member_ids) ORDER BY a.id FOR UPDATE;
    RETURN QUERY
        SELECT NULL::bigint, NULL::bigint, NULL::bigint, p.id::bigint, p.fingerprint::text
        FROM points_purchase p WHERE p.store_id = p_store_id AND p.receipt_no = p_receipt_no;
END
$$;
