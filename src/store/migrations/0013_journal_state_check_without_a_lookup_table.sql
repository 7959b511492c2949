-- sfwa store, schema 13 (issue 15): the journal's state check compares instead of building a table.
--
-- `CHECK (state IN ('claimed', 'sending', 'sent', 'failed', 'delivered', 'read'))` makes SQLite
-- build a temporary index of the six names each time a statement writing `state` runs (EXPLAIN:
-- `OpenEphemeral` and six `IdxInsert`; an IN list of more than two constants is looked up, not
-- compared) — every claim, send and status of every message. The same rule written as six
-- comparisons is checked in place.
--
-- Both spellings accept exactly the same values, so every row already stored satisfies the new
-- one and nothing on disk changes: the table's definition is edited in place, as SQLite documents
-- for changing a constraint without rebuilding a table (lang_altertable.html, "making other kinds
-- of table schema changes"; the migration runner then increments `schema_version`, see
-- db::Migration::rewrites_schema_text). A store whose definition reads otherwise is left as it is.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql,
       'CHECK (state IN (''claimed'', ''sending'', ''sent'', ''failed'', ''delivered'', ''read''))',
       'CHECK (state = ''claimed'' OR state = ''sending'' OR state = ''sent'' OR state = ''failed''
            OR state = ''delivered'' OR state = ''read'')')
 WHERE type = 'table' AND name = 'journal';
PRAGMA writable_schema = RESET;
