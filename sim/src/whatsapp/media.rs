//! Customers' media as Meta serves it: an inbound image, document, audio or video has a media id
//! (valid 7 days after upload); `GET /{version}/{media_id}` with the system-user token answers
//! `{messaging_product, url, mime_type, sha256, file_size, id}`, and the `url` (on the simulator:
//! `/whatsapp_business/attachments?mid=…&ext=…&hash=…`, signed, valid 5 minutes of simulated time)
//! gives the bytes to the same bearer token only.
//!
//! Control (no auth, like the rest of `/__sim/`):
//! - `POST /__sim/media` with the file as the body and its `Content-Type` → `{"id", "sha256",
//!   "file_size", "mime_type"}`: what a customer's upload would be; put the id in an inbound
//!   webhook.
//! - `GET /__sim/media` → `{"files", "downloads", "uploads"}`: files stored, downloads served,
//!   business uploads taken (`media_upload`).
//! - `POST /__sim/media/faults` `{"download_failures": N, "upload_failures": M}` → the next N
//!   downloads answer 500, the next M business uploads 131053.
//!
//! A media id past its 7 days, or one never issued, is answered like any unknown Graph object
//! (code 100, subcode 33, "… does not exist, cannot be loaded due to missing permissions, or does
//! not support this operation …"), which is what Meta answers for an expired media id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Duration;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::graph_error::GraphError;
use super::state::SimState;

/// How long Meta keeps an inbound media id.
pub const MEDIA_ID_LIFETIME: Duration = Duration::days(7);

/// How long a download URL works ("expires within minutes").
pub const URL_LIFETIME: Duration = Duration::minutes(5);

/// The path the download URLs point at (Meta's are on `lookaside.fbsbx.com`, same path).
const DOWNLOAD_PATH: &str = "/whatsapp_business/attachments";

/// The biggest file the control endpoint takes (Meta's document limit is 100 MB).
const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

/// The routes: the control endpoints and the download URL. `GET /{version}/{media_id}` shares the
/// Graph object route and is answered by [`media_info`].
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__sim/media", post(upload).get(stats))
        .route("/__sim/media/faults", post(set_faults))
        .route(DOWNLOAD_PATH, get(download))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}

async fn upload(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mime_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    if body.is_empty() {
        return control_error("the body is the file: send its bytes");
    }
    let file_size = body.len();
    let sha256 = hex::encode(Sha256::digest(&body));
    let id = state.media.add(body, &mime_type, state.clock.now());
    Json(json!({"id": id, "sha256": sha256, "file_size": file_size, "mime_type": mime_type}))
        .into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    let (files, uploads) = {
        let media = state.media.lock();
        (media.files.len(), media.uploads)
    };
    Json(json!({"files": files, "downloads": state.media.downloads(), "uploads": uploads}))
        .into_response()
}

#[derive(Deserialize)]
struct Faults {
    #[serde(default)]
    download_failures: u32,
    /// Business uploads (`media_upload`) to refuse with 131053, as Meta does a file it cannot
    /// process.
    #[serde(default)]
    upload_failures: u32,
}

async fn set_faults(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            let mut media = state.media.lock();
            media.download_failures = faults.download_failures;
            media.upload_failures = faults.upload_failures;
            Json(json!({
                "download_failures": faults.download_failures,
                "upload_failures": faults.upload_failures,
            }))
            .into_response()
        }
        Err(error) => control_error(format!("invalid JSON body: {error}")),
    }
}

fn control_error(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// `GET /{version}/{media_id}` for a media id this simulator issued ([`MediaStore::knows`]), once
/// the Graph route has checked the version and the token: the file's description and a fresh
/// signed URL, or Meta's unknown-object error once the id has expired.
///
/// [`MediaStore::knows`]: super::media_store::MediaStore::knows
pub fn media_info(state: &SimState, object_id: &str, headers: &HeaderMap) -> Response {
    let now = state.clock.now();
    let inner = state.media.lock();
    // A business's upload is kept 30 days, a customer's file 7.
    let lifetime = if inner.uploaded_by.contains_key(object_id) {
        super::media_upload::UPLOAD_LIFETIME
    } else {
        MEDIA_ID_LIFETIME
    };
    let Some(file) = inner
        .files
        .get(object_id)
        .filter(|f| now < f.uploaded_at + lifetime)
    else {
        return GraphError::unknown_object("get", object_id).into_response();
    };
    let expires = (now + URL_LIFETIME).timestamp();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let hash = signature(&state.config.app_secret, object_id, expires);
    let url = format!("http://{host}{DOWNLOAD_PATH}?mid={object_id}&ext={expires}&hash={hash}");
    Json(json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": file.mime_type,
        "sha256": file.sha256,
        "file_size": file.bytes.len(),
        "id": object_id,
    }))
    .into_response()
}

/// The URL's signature: HMAC-SHA256 of `{mid}:{ext}` under the app secret.
fn signature(secret: &str, mid: &str, expires: i64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{mid}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The download: the same bearer token, an unaltered unexpired signature, then the bytes.
async fn download(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let valid_token = presented.is_some_and(|token| {
        subtle::ConstantTimeEq::ct_eq(token.as_bytes(), state.config.access_token.as_bytes()).into()
    });
    if !valid_token {
        return GraphError::invalid_token().into_response();
    }
    let (Some(mid), Some(expires), Some(hash)) = (
        query.get("mid"),
        query.get("ext").and_then(|e| e.parse::<i64>().ok()),
        query.get("hash"),
    ) else {
        return (StatusCode::BAD_REQUEST, "Bad URL").into_response();
    };
    let expected = signature(&state.config.app_secret, mid, expires);
    let signed: bool = subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), expected.as_bytes()).into();
    if !signed || state.clock.now().timestamp() > expires {
        // Meta's lookaside answers an altered or expired URL with a bare 403/404, not Graph JSON.
        return (StatusCode::FORBIDDEN, "URL signature mismatch or expired").into_response();
    }
    let mut inner = state.media.lock();
    if inner.download_failures > 0 {
        inner.download_failures -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let Some(file) = inner.files.get(mid.as_str()) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let answer = (
        [(header::CONTENT_TYPE, file.mime_type.clone())],
        file.bytes.clone(),
    )
        .into_response();
    inner.downloads += 1;
    answer
}
