//! Filling the template catalog that [`super::catalog`] checks sends against, and mirroring it
//! into Salesforce as `WhatsApp_Template__c` records (so admins and reps pick templates from a
//! list and a Flow can look one up):
//! - [`sync`] — the whole listing (`GET /{waba_id}/message_templates`, paged), at start and on
//!   `schedule.template_catalog`;
//! - [`store_fetched`] — one template fetched by name when a send missed it;
//! - [`apply_updates`] — the lifecycle webhooks (`message_template_status_update`,
//!   `template_category_update`, `message_template_quality_update`), in the webhook's
//!   transaction.
//!
//! Each changed template queues its record's upsert in the outbox (keyed by
//! [`TEMPLATE_KEY_FIELD`], `name|language`), in the same transaction as the catalog's change;
//! a template APPROVED again releases the messages waiting for it (`store::templates::release`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tracing::info;

use crate::domain::template_catalog::{CatalogTemplate, TemplateUpdate, APPROVED};
use crate::store::{cursors, outbox, templates, StoreError};

use super::{Core, Dispatcher};

/// The Salesforce object the catalog is mirrored into (the package's `WhatsApp_Template__c`).
pub const TEMPLATE_OBJECT: &str = "WhatsApp_Template__c";
/// Its external id: `name|language`.
pub const TEMPLATE_KEY_FIELD: &str = "Template_Key__c";
/// The cursor stamped at each complete listing (`sfwa doctor` reads when the catalog was last read).
pub const SYNCED_CURSOR: &str = "template_catalog";

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Templates listed.
    pub templates: usize,
    /// New or changed since the last sync (their Salesforce records queued).
    pub changed: usize,
    /// Messages that waited for a paused template, now due.
    pub released: usize,
    /// No `whatsapp.business_account_id`: nothing listed.
    pub skipped: bool,
}

impl fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped {
            return write!(f, "no whatsapp.business_account_id: no template catalog");
        }
        write!(
            f,
            "{} templates listed, {} changed, {} waiting messages released",
            self.templates, self.changed, self.released
        )
    }
}

/// The record of `template` in Salesforce.
pub fn salesforce_fields(template: &CatalogTemplate) -> Map<String, Value> {
    let fields = json!({
        "Name": template.name.chars().take(80).collect::<String>(),
        "Language__c": template.language,
        "Category__c": template.category,
        "Status__c": template.status,
        "Quality__c": template.quality,
        "Body__c": template.body_text,
        "Parameter_Names__c": template.body_params.join(","),
        "Parameter_Count__c": template.body_params.len(),
        "Header_Type__c": template.header.as_meta(),
        "Template_Id__c": template.id,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn key(template: &CatalogTemplate) -> String {
    format!("{}|{}", template.name, template.language)
}

fn queue_record(
    tx: &rusqlite::Connection,
    template: &CatalogTemplate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    outbox::enqueue_upsert(
        tx,
        TEMPLATE_OBJECT,
        TEMPLATE_KEY_FIELD,
        &key(template),
        &salesforce_fields(template),
        now,
    )
}

/// Lists the whole catalog into the store (see the module's doc).
pub async fn sync(dispatcher: &Dispatcher) -> anyhow::Result<SyncSummary> {
    let waba_id = dispatcher.core.settings.whatsapp.business_account_id.trim();
    if waba_id.is_empty() {
        return Ok(SyncSummary {
            skipped: true,
            ..SyncSummary::default()
        });
    }
    let listed = dispatcher.whatsapp.catalog(waba_id, None).await?;
    let now = dispatcher.now();
    let count = listed.len();
    let (changed, released) = dispatcher
        .core
        .store
        .write(move |tx| {
            let changed = templates::replace_all(tx, &listed, now)?;
            for template in &changed {
                queue_record(tx, template, now)?;
            }
            let released = templates::release_approved(tx, now)?;
            cursors::set(tx, SYNCED_CURSOR, &count.to_string(), now)?;
            Ok((changed.len(), released))
        })
        .await?;
    if changed > 0 {
        dispatcher.core.flush.batch_ready();
    }
    Ok(SyncSummary {
        templates: count,
        changed,
        released,
        skipped: false,
    })
}

/// The first sync, as sfwa starts (sends before it ends fetch their template on a miss). A
/// failure is logged: sends then go unchecked and WhatsApp judges them until the catalog reads.
pub async fn sync_at_start(dispatcher: Dispatcher) {
    match sync(&dispatcher).await {
        Ok(summary) if summary.skipped => {}
        Ok(summary) => info!(%summary, "template catalog read"),
        Err(error) => tracing::warn!(
            %error,
            "reading the template catalog failed; template sends go unchecked and WhatsApp \
             judges them (the token needs whatsapp_business_management; sfwa doctor checks)"
        ),
    }
}

/// Stores the templates of one name fetched on a miss (every language Meta listed).
pub async fn store_fetched(core: &Core, listed: Vec<CatalogTemplate>) -> anyhow::Result<()> {
    let now = core.now();
    core.store
        .write(move |tx| {
            for template in &listed {
                if templates::upsert(tx, template, now)? {
                    queue_record(tx, template, now)?;
                    if template.status == APPROVED {
                        templates::release(tx, &template.name, &template.language, now)?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Applies lifecycle webhooks inside the webhook's transaction; returns how many templates
/// changed. A template the catalog does not know yet is left to the next sync or fetch.
pub fn apply_updates(
    tx: &rusqlite::Connection,
    updates: &[TemplateUpdate],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for update in updates {
        let change = templates::Change {
            status: update.status.clone(),
            category: update.category.clone(),
            quality: update.quality.clone(),
        };
        let Some(template) =
            templates::apply_update(tx, &update.name, &update.language, &change, now)?
        else {
            continue;
        };
        changed += 1;
        queue_record(tx, &template, now)?;
        if template.status == APPROVED {
            let released = templates::release(tx, &template.name, &template.language, now)?;
            if released > 0 {
                info!(template = %template.name, language = %template.language, released, "template approved again; the messages waiting for it go now");
            }
        }
    }
    Ok(changed)
}
