-- sfwa store, schema 8 (issue 16): whether a customer takes marketing messages from a business
-- number. One row per person (`customers.id`, so the choice follows them whichever key a message
-- or a send uses, and a merge keeps it: store/consent.rs), written by whatever told sfwa last:
--   source: keyword (the customer wrote STOP / START), user_preferences (Meta's webhook: they
--           stopped or resumed marketing in WhatsApp), meta_131050 (Meta refused a marketing
--           template because they stopped), salesforce is never stored (read from the record's
--           Contact / Lead on every send).
--   changed_at: the customer's or Meta's time of the change; an older change never overrides a
--               newer one (webhooks arrive out of order).
CREATE TABLE marketing_consent (
    customer   INTEGER PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    opted_out  INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    changed_at INTEGER NOT NULL
) STRICT;

-- Two persons merged (store/identity.rs `merge`, `set_key`): their keys move to the one kept, and
-- the moved person's choice goes with them unless the kept one has a later one. A stop said under
-- one key is not lost when Meta shows that key and another belong to one person.
CREATE TRIGGER marketing_consent_follows_keys AFTER UPDATE OF customer ON customer_keys
WHEN OLD.customer <> NEW.customer
BEGIN
    INSERT INTO marketing_consent (customer, opted_out, source, changed_at)
    SELECT NEW.customer, opted_out, source, changed_at
    FROM marketing_consent WHERE customer = OLD.customer
    ON CONFLICT (customer) DO UPDATE SET
        opted_out = excluded.opted_out, source = excluded.source,
        changed_at = excluded.changed_at
    WHERE excluded.changed_at > marketing_consent.changed_at;
END;
