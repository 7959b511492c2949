-- sfwa store, schema 1. Every timestamp is unix milliseconds UTC (INTEGER): it sorts, compares and
-- indexes as a number, and one representation everywhere means no string-format mismatches.

-- Outbound messages, keyed by the Salesforce record Id (DESIGN.md guarantee 1: a row is committed
-- before the HTTP send). `state` follows the status ladder; the store only ever moves it forward,
-- except `sending` -> `claimed` when a retry is scheduled for a send that provably did not happen.
CREATE TABLE journal (
    record_id          TEXT    NOT NULL PRIMARY KEY,
    state              TEXT    NOT NULL
        CHECK (state IN ('claimed', 'sending', 'sent', 'failed', 'delivered', 'read')),
    business_number_id TEXT,
    wa_id              TEXT,
    wamid              TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    INTEGER,
    sending_since      INTEGER,
    error_code         TEXT,
    status_at          INTEGER,          -- Meta's timestamp of the last status applied
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

-- Status webhooks look messages up by wamid; Meta's ids are unique.
CREATE UNIQUE INDEX journal_by_wamid ON journal (wamid) WHERE wamid IS NOT NULL;
-- The retry scan: claimed rows with a due time.
CREATE INDEX journal_due_retries ON journal (next_attempt_at)
    WHERE state = 'claimed' AND next_attempt_at IS NOT NULL;
-- The unknown-outcome scan: sends started long ago that no response or echo resolved.
CREATE INDEX journal_stuck_sending ON journal (sending_since) WHERE state = 'sending';
-- Retention.
CREATE INDEX journal_by_updated_at ON journal (updated_at);

-- Write-backs to Salesforce, one pending row per target record: a second enqueue merges into it
-- (later values win per field) and bumps `version`, so only the latest state is written per flush
-- (guarantee 5). `record_key` is the record Id for `update`, the external id value for `upsert`;
-- `item_key` is what the flush acknowledges by (see outbox.rs).
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY,
    item_key          TEXT    NOT NULL UNIQUE,
    operation         TEXT    NOT NULL CHECK (operation IN ('update', 'upsert')),
    object            TEXT    NOT NULL,
    external_id_field TEXT,
    record_key        TEXT    NOT NULL,
    fields            TEXT    NOT NULL,  -- JSON object
    version           INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   INTEGER,           -- NULL = due now
    last_error        TEXT,
    first_enqueued_at INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((operation = 'upsert') = (external_id_field IS NOT NULL))
) STRICT;

-- The flush reads oldest first and skips rows that are backing off.
CREATE INDEX outbox_due ON outbox (first_enqueued_at, next_attempt_at);

-- Write-backs Salesforce refused for good, kept for operators to inspect (capped in outbox.rs).
CREATE TABLE outbox_dead (
    id                INTEGER PRIMARY KEY,
    item_key          TEXT    NOT NULL,
    operation         TEXT    NOT NULL,
    object            TEXT    NOT NULL,
    external_id_field TEXT,
    record_key        TEXT    NOT NULL,
    fields            TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    first_enqueued_at INTEGER NOT NULL,
    reason            TEXT    NOT NULL,
    dropped_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX outbox_dead_by_dropped_at ON outbox_dead (dropped_at);

-- The inbound mirror: the customer's most recent inbound message per (business number, customer),
-- in Meta's own timestamps. This is the session window's source of truth.
CREATE TABLE inbound_last (
    business_number_id TEXT    NOT NULL,
    wa_id              TEXT    NOT NULL,
    last_inbound_at    INTEGER NOT NULL,
    PRIMARY KEY (business_number_id, wa_id)
) STRICT, WITHOUT ROWID;

-- Webhook items already processed (Meta redelivers; duplicates must be no-ops).
CREATE TABLE webhook_seen (
    key     TEXT    NOT NULL PRIMARY KEY,
    seen_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_seen_by_seen_at ON webhook_seen (seen_at);

-- Named positions in remote streams, e.g. the CometD replay id of a channel.
CREATE TABLE cursors (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
