-- sfwa store, schema 5 (issue 13): who the customer is. Since 2026 Meta may give a customer's
-- phone (wa_id), a business-scoped user id (BSUID, `US.1349…`), its parent form (`US.ENT.…`), or
-- several of them; the same person must have one window whichever one a message or a send uses.
--
-- `customers` is one person per business number, with the keys that address them now and the
-- window (the former `inbound_last.last_inbound_at`: the customer's most recent inbound message,
-- in Meta's time). `customer_keys` finds the person by any key they have or had: a lookup is one
-- primary-key probe plus the customer's rowid (store/identity.rs).
CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY,
    business_number_id TEXT    NOT NULL,
    wa_id              TEXT,             -- the phone now (digits with country code), if known
    user_id            TEXT,             -- the BSUID now, if known
    parent_user_id     TEXT,
    username           TEXT,             -- shown, never a key: usernames change and are reused
    last_inbound_at    INTEGER,          -- NULL: known, but never wrote in (a contact-card answer)
    updated_at         INTEGER NOT NULL
) STRICT;

-- Every key of a person: current ones (`retired_at` NULL) and the phones / BSUIDs they had before
-- a `user_changed_number` / `user_changed_user_id` (stamped with Meta's time of the change, so a
-- message sent from the old key after that time is someone else's, see identity.rs).
CREATE TABLE customer_keys (
    business_number_id TEXT    NOT NULL,
    key                TEXT    NOT NULL,
    customer           INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    retired_at         INTEGER,
    PRIMARY KEY (business_number_id, key)
) STRICT, WITHOUT ROWID;

-- Merging two persons moves every key of one to the other.
CREATE INDEX customer_keys_by_customer ON customer_keys (customer);

-- The old mirror keyed by the text of the customer id: a wa_id (digits) or, from a build that
-- already read BSUIDs, a text with a dot.
INSERT INTO customers (business_number_id, wa_id, user_id, last_inbound_at, updated_at)
SELECT business_number_id,
       CASE WHEN instr(wa_id, '.') = 0 THEN wa_id END,
       CASE WHEN instr(wa_id, '.') > 0 THEN wa_id END,
       last_inbound_at,
       last_inbound_at
FROM inbound_last;

INSERT INTO customer_keys (business_number_id, key, customer)
SELECT business_number_id, coalesce(wa_id, user_id), id FROM customers;

DROP TABLE inbound_last;
