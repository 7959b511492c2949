//! Graph's paged lists — `{"data":[…],"paging":{"cursors":{"after":"…"},"next":"…"}}` — read
//! page after page by `after` cursor ([`WhatsAppClient::list_all`]). The account's numbers
//! (`phone_numbers`) and its templates (`templates`) are such lists.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::client::{SendError, WhatsAppClient};

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    paging: Option<Paging>,
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
    /// Every item of the list at `path` (`GET /{version}/{path}?fields=…`), at most `max_pages`
    /// pages.
    pub(super) async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, SendError> {
        self.list_filtered(path, fields, &[], max_pages).await
    }

    /// [`Self::list_all`] with the list's own filters (`name=…` for templates).
    pub(super) async fn list_filtered<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: &str,
        filters: &[(&str, &str)],
        max_pages: usize,
    ) -> Result<Vec<T>, SendError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let mut query = vec![("fields", fields)];
            query.extend_from_slice(filters);
            if let Some(after) = after.as_deref() {
                query.push(("after", after));
            }
            let (status, body) = self.get_body(path, &query).await?;
            let page: Page<T> = serde_json::from_slice(&body)
                .map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))?;
            items.extend(page.data);
            after = page
                .paging
                .filter(|p| p.next.is_some())
                .and_then(|p| p.cursors)
                .and_then(|c| c.after);
            if after.is_none() {
                break;
            }
        }
        Ok(items)
    }
}
