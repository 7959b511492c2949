//! A business's media upload, as the Cloud API takes it: `POST /{version}/{phone_number_id}/media`,
//! a `multipart/form-data` form with `messaging_product=whatsapp`, `type` (the file's MIME type)
//! and `file` → `{"id": "<media id>"}`. The id lives 30 days; `GET /{version}/{media_id}`
//! describes it like any media (`media::media_info`), and a message sends it as
//! `"image": {"id": …}` — from the number that uploaded it only ([`check_sent_media`]).
//!
//! Checks run in Meta's order: the version, the token and the number (as every phone-number
//! endpoint), then the form: `messaging_product`, `file`, `type` missing or wrong → code 100
//! ("Invalid parameter"); a type WhatsApp does not send, or a file over the type's limit (image
//! 5 MB, audio and video 16 MB, document 100 MB, sticker 500 KB) → code 131053 ("Media upload
//! error"), with details saying which.
//!
//! `GET /__sim/media` counts the uploads (`uploads`) beside the customers' files.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::graph_auth::check_access;
use super::graph_error::GraphError;
use super::state::SimState;

/// How long Meta keeps an uploaded file ("uploaded media ids live 30 days").
pub const UPLOAD_LIFETIME: Duration = Duration::days(30);

const KB: usize = 1024;
const MB: usize = 1024 * 1024;

/// The largest request the route reads: the largest file (a 100 MB document) and the form around it.
const MAX_BODY_BYTES: usize = 100 * MB + 64 * KB;

/// The MIME types WhatsApp sends, and the most bytes each may be.
const SUPPORTED: &[(&str, usize)] = &[
    ("image/jpeg", 5 * MB),
    ("image/png", 5 * MB),
    ("image/webp", 500 * KB),
    ("audio/aac", 16 * MB),
    ("audio/amr", 16 * MB),
    ("audio/mpeg", 16 * MB),
    ("audio/mp4", 16 * MB),
    ("audio/ogg", 16 * MB),
    ("video/mp4", 16 * MB),
    ("video/3gpp", 16 * MB),
    ("text/plain", 100 * MB),
    ("application/pdf", 100 * MB),
    ("application/msword", 100 * MB),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        100 * MB,
    ),
    ("application/vnd.ms-excel", 100 * MB),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        100 * MB,
    ),
    ("application/vnd.ms-powerpoint", 100 * MB),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        100 * MB,
    ),
];

/// The media types a message can carry by id.
const MEDIA_TYPES: [&str; 5] = ["image", "document", "video", "audio", "sticker"];

/// The route's method router, body limit included (the Graph router's default is 2 MB).
pub fn route() -> MethodRouter<Arc<SimState>> {
    post(upload).layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// 131053, as Meta names a media upload it refuses.
fn upload_error(details: impl Into<String>) -> GraphError {
    GraphError {
        status: StatusCode::BAD_REQUEST,
        code: 131053,
        title: "Media upload error".to_owned(),
        details: Some(details.into()),
        subcode: None,
        error_type: "OAuthException",
        message: None,
    }
}

/// The form's fields as read: text fields by name, and the file.
#[derive(Default)]
struct Form {
    texts: HashMap<String, String>,
    file: Option<Bytes>,
}

async fn upload(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    if let Err(error) = check_access(&state, &version, &phone_number_id, &headers, &query, "post") {
        return error.into_response();
    }
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(error) => return error.into_response(),
    };
    match accept(&state, &phone_number_id, form) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn read_form(request: Request) -> Result<Form, GraphError> {
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|_| {
        GraphError::invalid_parameter(
            "The request must be multipart/form-data with messaging_product, type and file.",
        )
    })?;
    let mut form = Form::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(form),
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(upload_error(format!(
                    "The request is larger than the {} MB WhatsApp takes.",
                    MAX_BODY_BYTES / MB
                )))
            }
            Err(error) => {
                return Err(GraphError::invalid_parameter(format!(
                    "The multipart body could not be read: {}",
                    error.body_text()
                )))
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|_| upload_error("The file could not be read."))?;
        if name == "file" {
            form.file = Some(bytes);
        } else {
            form.texts
                .insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

/// The form judged and, when it passes, the file stored for `phone_number_id`: its new media id.
fn accept(state: &SimState, phone_number_id: &str, form: Form) -> Result<String, GraphError> {
    super::send_request::messaging_product(
        form.texts.get("messaging_product").map(String::as_str),
    )?;
    let Some(file) = form.file else {
        return Err(GraphError::invalid_parameter(
            "The parameter file is required.",
        ));
    };
    let Some(mime_type) = form
        .texts
        .get("type")
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
    else {
        return Err(GraphError::invalid_parameter(
            "The parameter type is required.",
        ));
    };
    // `audio/ogg; codecs=opus` is an ogg.
    let essence = mime_type.split(';').next().unwrap_or_default().trim();
    let Some((_, limit)) = SUPPORTED
        .iter()
        .find(|(supported, _)| *supported == essence)
    else {
        return Err(upload_error(format!(
            "Unsupported file type: {mime_type}. Upload a file of a type WhatsApp supports."
        )));
    };
    if file.is_empty() {
        return Err(upload_error("The file is empty."));
    }
    if file.len() > *limit {
        return Err(upload_error(format!(
            "The file is {} bytes; WhatsApp takes {mime_type} files of at most {limit} bytes.",
            file.len()
        )));
    }
    {
        let mut media = state.media.lock();
        if media.upload_failures > 0 {
            media.upload_failures -= 1;
            return Err(upload_error(
                "The file could not be processed (simulated: /__sim/media/faults upload_failures).",
            ));
        }
    }
    let now = state.clock.now();
    let id = state.media.add(file, essence, now);
    let mut media = state.media.lock();
    media
        .uploaded_by
        .insert(id.clone(), phone_number_id.to_owned());
    media.uploads += 1;
    Ok(id)
}

/// A send's media object by `id` names a file `phone_number_id` uploaded, still kept at `now`:
/// else Meta's invalid-parameter refusal. (An object with both `id` and `link` is refused by the
/// request's own validation.)
pub fn check_sent_media(
    state: &SimState,
    phone_number_id: &str,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<(), GraphError> {
    let Some(kind) = request
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| MEDIA_TYPES.contains(kind))
    else {
        return Ok(());
    };
    let Some(id) = request[kind].get("id").and_then(Value::as_str) else {
        return Ok(());
    };
    let media = state.media.lock();
    let ours = media
        .uploaded_by
        .get(id)
        .is_some_and(|by| by == phone_number_id);
    let kept = media
        .files
        .get(id)
        .is_some_and(|file| now < file.uploaded_at + UPLOAD_LIFETIME);
    if ours && kept {
        Ok(())
    } else {
        Err(GraphError::invalid_parameter(format!(
            "Invalid media id: {kind}['id'] '{id}' was not uploaded by this phone number, or it has expired (uploaded media is kept 30 days)."
        )))
    }
}
