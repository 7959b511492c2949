//! The business numbers of the account: `GET /{version}/{waba_id}/phone_numbers` (paged with
//! `paging.cursors.after`). The instance that takes the blank-number records lists them so that a
//! Queued record naming a number that is not the account's fails `UNKNOWN_BUSINESS_NUMBER`
//! instead of waiting forever (`pipeline::unknown_numbers`), read through the shared paged listing (`whatsapp::listing`).

use serde::Deserialize;

use super::client::{SendError, WhatsAppClient};

/// At most this many pages are read (an account has a handful of numbers; Meta pages by 25).
const MAX_PAGES: usize = 40;

#[derive(Deserialize)]
struct WireNumber {
    id: String,
}

impl WhatsAppClient {
    /// The `phone_number_id` of every number of WhatsApp Business Account `waba_id`.
    #[tracing::instrument(skip_all, fields(waba_id = %waba_id))]
    pub async fn account_numbers(&self, waba_id: &str) -> Result<Vec<String>, SendError> {
        let path = format!("{waba_id}/phone_numbers");
        let numbers: Vec<WireNumber> = self.list_all(&path, "id", MAX_PAGES).await?;
        Ok(numbers.into_iter().map(|n| n.id).collect())
    }
}
