-- sfwa store, schema 10 (issue 17): Salesforce Files sent by media id.
--
-- A media message naming a Salesforce File (Media_File_Id__c) is sent by uploading the file to
-- WhatsApp's media endpoint and sending the id WhatsApp answers (pipeline/media_upload.rs). The
-- id is kept per business number (an id belongs to the number that uploaded it) and
-- ContentVersion (a new version of a file is a new upload) for 29 days — WhatsApp keeps uploaded
-- media 30 — so a retry, a message sent again, or a second message with the same file does not
-- upload it again. The row is written as soon as WhatsApp answers the upload, before the message
-- is sent: a crash in between resumes with the same id.
CREATE TABLE uploaded_media (
    business_number_id TEXT    NOT NULL,
    content_version_id TEXT    NOT NULL,
    media_id           TEXT    NOT NULL,
    uploaded_at        INTEGER NOT NULL,
    PRIMARY KEY (business_number_id, content_version_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX uploaded_media_by_age ON uploaded_media (uploaded_at);
