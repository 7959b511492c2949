-- sfwa store, schema 9 (issue 16): re-engagement that waits for the reply.
--
-- A free-form message that meets a closed window, when its record (or its number's setting) names a
-- re-engagement template, is not failed: sfwa sends the template once per customer per
-- `reengage.period` and the message waits for the customer's reply (pipeline/reengage.rs).

-- The re-engagement template sent (or being sent) to a customer from a business number: at most
-- one per pair; a newer one replaces it once the period has passed. `record_id` is the template's
-- own WhatsApp_Message__c record sfwa created (NULL between reserving the row and Salesforce's
-- answer to the create).
CREATE TABLE reengagement (
    business_number_id TEXT    NOT NULL,
    customer           TEXT    NOT NULL,
    record_id          TEXT,
    template           TEXT    NOT NULL,
    language           TEXT    NOT NULL,
    started_at         INTEGER NOT NULL,
    PRIMARY KEY (business_number_id, customer)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX reengagement_by_record ON reengagement (record_id) WHERE record_id IS NOT NULL;

-- Messages waiting for the customer's reply. Their journal rows stay `claimed`, due at
-- `expires_at`, so the retry scan finds them after a restart; the reply makes them due now, in
-- creation order, paced per recipient.
CREATE TABLE waiting (
    record_id          TEXT    NOT NULL PRIMARY KEY,
    business_number_id TEXT    NOT NULL,
    customer           TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,  -- the record's CreatedDate (else when it began waiting)
    since              INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX waiting_by_customer ON waiting (business_number_id, customer, created_at, record_id);
