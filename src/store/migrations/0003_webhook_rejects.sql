-- sfwa store, schema 3: the dead letter of webhook events (statuses, inbound messages) that a
-- signed POST carried but sfwa refused — unreadable, or holding a value Salesforce would refuse
-- (a timestamp outside 1700-4000, an over-long wamid). The POST is still answered 200, so Meta
-- does not redeliver it; this table is where an operator sees what was refused and why
-- (store/webhook_rejects.rs; `sfwa doctor`, the dead-letter CLI).
CREATE TABLE webhook_rejects (
    id            INTEGER PRIMARY KEY,
    -- sha256 (hex) of the whole event JSON: a redelivery of the same event is one row, counted.
    fingerprint   TEXT    NOT NULL UNIQUE,
    -- Stable label (webhook::RejectReason): unreadable, unsupported_status, bad_timestamp,
    -- value_too_long, no_business_number, internal_error.
    reason        TEXT    NOT NULL,
    detail        TEXT    NOT NULL,  -- a sentence: where in the POST and what was wrong (bounded)
    event         TEXT    NOT NULL,  -- the event's JSON, cut to 8 KiB (then not valid JSON)
    event_bytes   INTEGER NOT NULL CHECK (event_bytes >= 0),  -- its full size
    times_seen    INTEGER NOT NULL DEFAULT 1 CHECK (times_seen >= 1),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_rejects_by_last_seen_at ON webhook_rejects (last_seen_at);
