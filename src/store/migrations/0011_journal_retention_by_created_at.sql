-- sfwa store, schema 11 (issue 15): retention finds old journal rows by when they were created.
--
-- Retention deletes finished rows not updated since a cutoff. Indexed on `updated_at`, every step
-- of every message after its claim (sending, sent, delivered, read) moved the row's entry in that
-- index, a delete and an insert each, for a scan that runs once a day.
-- `created_at` never changes after the claim and is never later than `updated_at`, so the rows
-- created before the cutoff hold every row the retention deletes; it reads those and keeps the
-- ones updated since (journal::delete_finished_before). The index is written once per message.
DROP INDEX journal_by_updated_at;
CREATE INDEX journal_by_created_at ON journal (created_at);
