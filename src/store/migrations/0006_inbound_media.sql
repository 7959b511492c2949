-- sfwa store, schema 6: customers' files to copy into Salesforce Files. One row per inbound media
-- message, queued in the webhook's transaction (pipeline/webhook_apply.rs) so a file is never
-- forgotten once Meta had its 200; the media worker (pipeline/media.rs) downloads it from Meta
-- within the 7 days Meta keeps it and uploads it as a ContentVersion on the message record.
--   state: waiting (for its turn, or for the record to exist in Salesforce), done (a File),
--          too_large (over media.max_bytes, said on the record), failed (given up, said on the
--          record), disabled (media.enabled = false, said on the record).
--   received_at: Meta's timestamp of the message; the media id expires 7 days after it.
--   next_attempt_at: when the worker may try it next (back-off after a failure).
CREATE TABLE inbound_media (
    wamid           TEXT PRIMARY KEY,
    media_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    mime_type       TEXT,
    filename        TEXT,
    caption         TEXT,
    received_at     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'waiting',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    record_id       TEXT,
    file_id         TEXT,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- The worker's question: which waiting files are due, soonest first.
CREATE INDEX inbound_media_due ON inbound_media (next_attempt_at) WHERE state = 'waiting';
