//! The simulated Meta's store of customers' media files (see `media` for how they are served):
//! the bytes by media id, and the download faults. Kept apart from `media` so the shared state
//! can hold it without the state and the handlers importing each other.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};

/// One stored file.
#[derive(Debug)]
pub(super) struct StoredMedia {
    pub bytes: Bytes,
    pub mime_type: String,
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
}

/// The simulated Meta's media: files by id, and the download faults.
#[derive(Debug, Default)]
pub struct MediaStore {
    inner: Mutex<MediaInner>,
}

#[derive(Debug, Default)]
pub(super) struct MediaInner {
    pub files: HashMap<String, StoredMedia>,
    /// Downloads still to fail with a 500.
    pub download_failures: u32,
    /// Downloads answered (bytes served), for tests.
    pub downloads: u64,
    /// Ids handed out, so a retired one is never reissued.
    pub issued: HashSet<String>,
    /// Files a business uploaded (`media_upload`): media id → the phone number id that did.
    pub uploaded_by: HashMap<String, String>,
    /// Uploads taken, for tests.
    pub uploads: u64,
    /// Business uploads still to refuse with 131053 (`media_upload`).
    pub upload_failures: u32,
}

impl MediaStore {
    pub(super) fn lock(&self) -> MutexGuard<'_, MediaInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a customer's file; returns its media id.
    pub fn add(&self, bytes: Bytes, mime_type: &str, now: DateTime<Utc>) -> String {
        let mut inner = self.lock();
        let id = loop {
            let id = rand::thread_rng()
                .gen_range(1_000_000_000_000_000_u64..9_999_999_999_999_999)
                .to_string();
            if inner.issued.insert(id.clone()) {
                break id;
            }
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        inner.files.insert(
            id.clone(),
            StoredMedia {
                bytes,
                mime_type: mime_type.to_string(),
                sha256,
                uploaded_at: now,
            },
        );
        id
    }

    /// Whether `id` is a media id this simulator issued (expired or not).
    pub fn knows(&self, id: &str) -> bool {
        self.lock().issued.contains(id)
    }

    /// Downloads served so far.
    pub fn downloads(&self) -> u64 {
        self.lock().downloads
    }
}
