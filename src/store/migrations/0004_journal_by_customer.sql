-- sfwa store, schema 4: find the latest message WhatsApp accepted for a customer without scanning
-- the journal. An inbound record is owned by the owner of the Case of the conversation it answers
-- (pipeline/inbound_owner.rs); when the customer did not reply to a particular message, that is the
-- latest message sent to them (journal::latest_accepted), looked up once per write-back flush.
-- Partial: only rows WhatsApp accepted (a wamid) can answer that question.
CREATE INDEX journal_by_customer ON journal (wa_id, sending_since) WHERE wamid IS NOT NULL;
