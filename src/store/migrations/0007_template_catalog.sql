-- sfwa store, schema 7: the account's message templates (the catalog) and the messages waiting
-- for a paused template to come back.
--
-- templates: one row per template and language, as Meta last described it (the listing of
--   `GET /{waba_id}/message_templates`, or a lifecycle webhook since). `definition` is the parsed
--   template (JSON of `domain::template_catalog::CatalogTemplate`); status, category and quality
--   are also columns so a webhook can change them without rewriting the definition.
CREATE TABLE templates (
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    status      TEXT NOT NULL,
    category    TEXT NOT NULL,
    quality     TEXT NOT NULL DEFAULT 'UNKNOWN',
    definition  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (name, language)
) WITHOUT ROWID;

-- template_waits: a Queued message held because its template is PAUSED. Its journal row stays
--   `claimed` with `next_attempt_at` at the end of the wait (`since` + templates.max_paused_wait);
--   the template's return to APPROVED (webhook or sync) brings that time forward to now, and the
--   retry step sends it. Durable, so a restart resumes the wait.
CREATE TABLE template_waits (
    record_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    since       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX template_waits_by_template ON template_waits (name, language);
