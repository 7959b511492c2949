//! The business numbers of the account: `GET /{version}/{waba_id}/phone_numbers` (paged with
//! `paging.cursors.after`). The instance that takes the blank-number records lists them so that a
//! Queued record naming a number that is not the account's fails `UNKNOWN_BUSINESS_NUMBER`
//! instead of waiting forever (`pipeline::jobs::unknown_numbers`).

use serde::Deserialize;

use super::client::{SendError, WhatsAppClient};

/// At most this many pages are read (an account has a handful of numbers; Meta pages by 25).
const MAX_PAGES: usize = 40;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<WireNumber>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct WireNumber {
    id: String,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    /// Present only when there is a next page.
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

impl WhatsAppClient {
    /// The `phone_number_id` of every number of WhatsApp Business Account `waba_id`.
    #[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
    pub async fn account_numbers(&self, waba_id: &str) -> Result<Vec<String>, SendError> {
        let path = format!("{waba_id}/phone_numbers");
        let mut numbers = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("fields", "id")];
            if let Some(after) = after.as_deref() {
                query.push(("after", after));
            }
            let (status, body) = self.get_body(&path, &query).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
            numbers.extend(page.data.into_iter().map(|n| n.id));
            after = page
                .paging
                .filter(|p| p.next.is_some())
                .and_then(|p| p.cursors)
                .and_then(|c| c.after);
            if after.is_none() {
                break;
            }
        }
        Ok(numbers)
    }
}
