//! The account's template catalog (table `templates`, migration 7) and the messages waiting for
//! a paused template (table `template_waits`).
//!
//! The catalog is written by the sync (`pipeline::catalog::sync`, [`replace_all`]), by the fetch
//! of one template on a miss ([`upsert`]) and by lifecycle webhooks ([`apply_update`]), and read
//! by the send path's check (`pipeline::catalog::judge`, through [`get`] and [`wait_since`]).
//! A message whose template is PAUSED waits durably: its journal row stays `claimed`, due at the
//! end of the wait, with a [`template_waits`](start_wait) row; the template's return to APPROVED
//! brings that due time forward ([`release`]) and the retry step sends it.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{time_column, to_millis};
use super::error::StoreError;
use crate::domain::sf_id::SfId;
use crate::domain::template_catalog::{CatalogTemplate, APPROVED};

fn to_json(template: &CatalogTemplate) -> Result<String, StoreError> {
    serde_json::to_string(template).map_err(|source| StoreError::Json {
        record_key: format!("template {}/{}", template.name, template.language),
        source,
    })
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// The stored definition with the status, category and quality columns laid over it (webhooks
/// change those alone). A definition that no longer reads is treated as unknown.
fn assemble(
    (definition, status, category, quality): (String, String, String, String),
) -> Option<CatalogTemplate> {
    let mut template: CatalogTemplate = serde_json::from_str(&definition).ok()?;
    template.status = status;
    template.category = category;
    template.quality = quality;
    Some(template)
}

/// Template `name` in `language`, if the catalog knows it.
pub fn get(
    conn: &Connection,
    name: &str,
    language: &str,
) -> Result<Option<CatalogTemplate>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT definition, status, category, quality FROM templates
             WHERE name = ?1 AND language = ?2",
        )?
        .query_row(params![name, language], from_row)
        .optional()?;
    Ok(row.and_then(assemble))
}

/// The category (`MARKETING`, `UTILITY`, `AUTHENTICATION`) and status of template `name` in
/// `language`, if the catalog knows it: the read-only lookup the consent check and `sfwa plan`
/// use (a store opened read-only serves it).
pub fn category_and_status(
    conn: &Connection,
    name: &str,
    language: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT category, status FROM templates WHERE name = ?1 AND language = ?2")?
        .query_row(params![name, language], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?)
}

/// Every template of the catalog, by name and language.
pub fn all(conn: &Connection) -> Result<Vec<CatalogTemplate>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT definition, status, category, quality FROM templates ORDER BY name, language",
    )?;
    let rows = statement.query_map([], from_row)?;
    let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(rows.into_iter().filter_map(assemble).collect())
}

/// Stores `template` (new, or replacing the same name and language); `true` when anything a
/// Salesforce record shows changed (the caller then queues its upsert).
pub fn upsert(
    conn: &Connection,
    template: &CatalogTemplate,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let before = get(conn, &template.name, &template.language)?;
    if before.as_ref() == Some(template) {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO templates (name, language, status, category, quality, definition, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (name, language) DO UPDATE SET status = excluded.status,
             category = excluded.category, quality = excluded.quality,
             definition = excluded.definition, updated_at = excluded.updated_at",
    )?
    .execute(params![
        template.name,
        template.language,
        template.status,
        template.category,
        template.quality,
        to_json(template)?,
        to_millis(now)
    ])?;
    Ok(true)
}

/// Replaces the catalog with a full listing: templates no longer listed are deleted (Meta
/// deleted them). Returns the templates that are new or changed.
pub fn replace_all(
    conn: &Connection,
    templates: &[CatalogTemplate],
    now: DateTime<Utc>,
) -> Result<Vec<CatalogTemplate>, StoreError> {
    let mut changed = Vec::new();
    for template in templates {
        if upsert(conn, template, now)? {
            changed.push(template.clone());
        }
    }
    let known: Vec<(String, String)> = conn
        .prepare_cached("SELECT name, language FROM templates")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, language) in known {
        if !templates
            .iter()
            .any(|t| t.name == name && t.language == language)
        {
            conn.prepare_cached("DELETE FROM templates WHERE name = ?1 AND language = ?2")?
                .execute(params![name, language])?;
        }
    }
    Ok(changed)
}

/// What a lifecycle webhook changes on one template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub status: Option<String>,
    pub category: Option<String>,
    pub quality: Option<String>,
}

/// Applies a lifecycle webhook's `change` to the template, if the catalog knows it (one it does
/// not know is listed by the next sync or fetched on the first send). Returns the template as it
/// now is, when it changed.
pub fn apply_update(
    conn: &Connection,
    name: &str,
    language: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Option<CatalogTemplate>, StoreError> {
    let Some(mut template) = get(conn, name, language)? else {
        return Ok(None);
    };
    let before = template.clone();
    if let Some(status) = &change.status {
        template.status.clone_from(status);
    }
    if let Some(category) = &change.category {
        template.category.clone_from(category);
    }
    if let Some(quality) = &change.quality {
        template.quality.clone_from(quality);
    }
    if template == before {
        return Ok(None);
    }
    upsert(conn, &template, now)?;
    Ok(Some(template))
}

/// When the message of `record_id` began waiting for its paused template, if it is waiting.
pub fn wait_since(
    conn: &Connection,
    record_id: &SfId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT since FROM template_waits WHERE record_id = ?1")?
        .query_row([record_id], |row| time_column(row, 0))
        .optional()?)
}

/// Records that `record_id` waits for template `name`/`language` (kept from its first wait), and
/// schedules its journal row for `until` (the end of the wait). `false`, changing nothing, when
/// the journal row moved on (it is no longer a claim sfwa may send).
pub fn start_wait(
    conn: &Connection,
    record_id: &SfId,
    (name, language): (&str, &str),
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = 'claimed', next_attempt_at = ?2, sending_since = NULL,
                 updated_at = ?3
             WHERE record_id = ?1 AND state IN ('claimed', 'sending') AND wamid IS NULL",
        )?
        .execute(params![record_id, to_millis(until), to_millis(now)])?;
    if changed == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO template_waits (record_id, name, language, since) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (record_id) DO UPDATE SET name = excluded.name, language = excluded.language",
    )?
    .execute(params![record_id, name, language, to_millis(now)])?;
    Ok(true)
}

/// Forgets the wait of `record_id` (it was sent, or refused).
pub fn end_wait(conn: &Connection, record_id: &SfId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM template_waits WHERE record_id = ?1")?
        .execute([record_id])?;
    Ok(())
}

/// Template `name`/`language` is APPROVED again: the messages waiting for it become due now (the
/// retry step sends them). Returns how many.
pub fn release(
    conn: &Connection,
    name: &str,
    language: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE journal SET next_attempt_at = ?3, updated_at = ?3
             WHERE state = 'claimed' AND next_attempt_at > ?3 AND record_id IN
                 (SELECT record_id FROM template_waits WHERE name = ?1 AND language = ?2)",
        )?
        .execute(params![name, language, to_millis(now)])?)
}

/// Releases the waits of every template the catalog holds as APPROVED (after a sync, which may
/// have missed a webhook). Returns how many messages became due.
pub fn release_approved(conn: &Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE journal SET next_attempt_at = ?2, updated_at = ?2
             WHERE state = 'claimed' AND next_attempt_at > ?2 AND record_id IN
                 (SELECT w.record_id FROM template_waits w JOIN templates t
                     ON t.name = w.name AND t.language = w.language WHERE t.status = ?1)",
        )?
        .execute(params![APPROVED, to_millis(now)])?)
}

/// How many messages wait for a paused template.
pub fn waiting(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM template_waits")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::test_connection;
    use crate::store::journal;

    fn template(status: &str) -> CatalogTemplate {
        CatalogTemplate {
            name: "promo".into(),
            language: "en_US".into(),
            status: status.into(),
            category: "MARKETING".into(),
            quality: "GREEN".into(),
            ..CatalogTemplate::default()
        }
    }

    #[test]
    fn a_webhook_change_is_laid_over_the_stored_definition() {
        let conn = test_connection();
        let now = Utc::now();
        upsert(&conn, &template(APPROVED), now).unwrap();

        let change = Change {
            status: Some("PAUSED".into()),
            ..Change::default()
        };
        let changed = apply_update(&conn, "promo", "en_US", &change, now).unwrap();

        assert_eq!(changed.unwrap().status, "PAUSED");
        assert_eq!(
            category_and_status(&conn, "promo", "en_US").unwrap(),
            Some(("MARKETING".to_string(), "PAUSED".to_string()))
        );
        assert_eq!(
            get(&conn, "promo", "en_US").unwrap().unwrap().status,
            "PAUSED"
        );
        assert!(apply_update(&conn, "promo", "en_US", &change, now)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_waiting_message_becomes_due_when_its_template_is_approved_again() {
        let conn = test_connection();
        let now = Utc::now();
        let id: SfId = "a015g00000ReTryAAV".parse().unwrap();
        journal::claim(&conn, &id, now).unwrap();
        upsert(&conn, &template("PAUSED"), now).unwrap();
        let until = now + chrono::Duration::hours(10);
        assert!(start_wait(&conn, &id, ("promo", "en_US"), until, now).unwrap());
        assert_eq!(release_approved(&conn, now).unwrap(), 0);

        upsert(&conn, &template(APPROVED), now).unwrap();
        let released = release_approved(&conn, now).unwrap();

        assert_eq!(released, 1);
        assert_eq!(journal::due_retries(&conn, now, 10).unwrap().len(), 1);
        assert_eq!(wait_since(&conn, &id).unwrap(), Some(journal_time(now)));
    }

    fn journal_time(at: DateTime<Utc>) -> DateTime<Utc> {
        crate::store::db::from_millis(to_millis(at)).unwrap()
    }
}
