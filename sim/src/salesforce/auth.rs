//! OAuth 2.0 token endpoint and sessions of the simulated org.
//!
//! Three grants, answered as Salesforce answers them (see reference/salesforce-api.md): JWT bearer
//! (RS256 against the trusted key; iss, sub, aud, exp ≤ 3 min), client credentials (only on the My
//! Domain host, never on login./test.), and refresh token. Sessions expire after the org's session
//! timeout of inactivity, which REST answers as 401 INVALID_SESSION_ID.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::OrgState;

/// A live access token.
#[derive(Clone, Debug)]
struct Session {
    last_used: DateTime<Utc>,
}

/// Issued access and refresh tokens.
#[derive(Debug, Default)]
pub struct Sessions {
    active: HashMap<String, Session>,
    refresh_tokens: HashSet<String>,
    /// Every access token ever issued, expired or not (tests check none of them reaches a log).
    issued: Vec<String>,
}

/// Why a bearer token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    Missing,
    Invalid,
}

impl Sessions {
    /// Checks a token and records the activity that keeps it alive.
    pub fn touch(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
        timeout: Duration,
    ) -> Result<(), SessionError> {
        let session = self.active.get_mut(token).ok_or(SessionError::Invalid)?;
        if now - session.last_used > timeout {
            self.active.remove(token);
            return Err(SessionError::Invalid);
        }
        session.last_used = now;
        Ok(())
    }

    /// Forced expiry: every access token stops working (refresh tokens keep working).
    pub fn expire_all(&mut self) {
        self.active.clear();
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// Every access token issued so far, including expired ones.
    pub fn issued_tokens(&self) -> &[String] {
        &self.issued
    }

    /// Issues a refresh token, as the web-server flow would have for an approved user.
    pub fn issue_refresh_token(&mut self) -> String {
        let token = format!("5Aep861{}", random_token(80));
        self.refresh_tokens.insert(token.clone());
        token
    }

    fn issue(&mut self, org_id: &str, now: DateTime<Utc>) -> String {
        let token = format!("{}!AR{}", &org_id[..15], random_token(96));
        self.active
            .insert(token.clone(), Session { last_used: now });
        self.issued.push(token.clone());
        token
    }
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)?
                .to_str()
                .ok()?
                .strip_prefix("OAuth ")
        })
        .map(str::trim)
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JwtClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
}

/// An OAuth error exactly as Salesforce writes it: HTTP 400 with `error` and `error_description`.
#[derive(Debug)]
struct OAuthError {
    error: &'static str,
    description: &'static str,
}

fn oauth_error(error: &'static str, description: &'static str) -> OAuthError {
    OAuthError { error, description }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

/// `POST /services/oauth2/token`.
pub async fn token(State(org): State<Arc<OrgState>>, headers: HeaderMap, body: String) -> Response {
    org.usage
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .token_requests += 1;
    let mut request: TokenRequest = serde_urlencoded_form(&body);
    // Client credentials may come as HTTP Basic instead of form fields.
    if let Some((id, secret)) = basic_credentials(&headers) {
        request.client_id.get_or_insert(id);
        request.client_secret.get_or_insert(secret);
    }
    let now = org.clock.now();
    let outcome = match request.grant_type.as_deref() {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => jwt_bearer(&org, &request, now),
        Some("client_credentials") => client_credentials(&org, &request, &headers),
        Some("refresh_token") => refresh(&org, &request),
        Some(_) | None => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    };
    match outcome {
        Ok(flow) => {
            let token = org
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .issue(&org.org_id, now);
            let instance_url = instance_url(&org, &headers);
            let mut body = json!({
                "access_token": token,
                "scope": "api",
                "instance_url": instance_url,
                "id": format!("{instance_url}/id/{}/{}", org.org_id, org.user_id),
                "token_type": "Bearer",
            });
            if flow != Flow::Jwt {
                let issued_at = now.timestamp_millis().to_string();
                let signature = signature(&org.config.client_secret, &body["id"], &issued_at);
                body["issued_at"] = json!(issued_at);
                body["signature"] = json!(signature);
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// The org's URL as this client reaches it. A simulator bound to every interface (`0.0.0.0`, e.g.
/// `sfwa sim` in a container) has no one URL of its own: the client is sent back to the host it
/// asked (`Host: sim:7701`), as a real org sends it to its My Domain.
fn instance_url(org: &OrgState, headers: &HeaderMap) -> String {
    let own = org.url();
    let unspecified = own.starts_with("http://0.0.0.0:") || own.starts_with("http://[::]:");
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    match host {
        Some(host) if unspecified => format!("http://{host}"),
        _ => own,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Jwt,
    ClientCredentials,
    Refresh,
}

fn jwt_bearer(
    org: &OrgState,
    request: &TokenRequest,
    now: DateTime<Utc>,
) -> Result<Flow, OAuthError> {
    let invalid = |d: &'static str| oauth_error("invalid_grant", d);
    let assertion = request
        .assertion
        .as_deref()
        .ok_or_else(|| oauth_error("invalid_request", "assertion is missing"))?;
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| invalid("invalid assertion"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("invalid assertion"));
    }
    let key = DecodingKey::from_rsa_pem(org.config.trusted_key.public_pem.as_bytes())
        .map_err(|_| invalid("invalid assertion"))?;
    // Claims are checked by hand below, against the simulator's clock and with Salesforce's messages.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<JwtClaims>(assertion, &key, &validation)
        .map_err(|_| invalid("invalid assertion"))?
        .claims;
    if claims.iss.as_deref() != Some(org.config.client_id.as_str()) {
        return Err(oauth_error(
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    let audiences: Vec<String> = match &claims.aud {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let own = org.url();
    let accepted = |aud: &str| {
        let aud = aud.trim_end_matches('/');
        aud == "https://login.salesforce.com" || aud == "https://test.salesforce.com" || aud == own
    };
    if !audiences.iter().any(|a| accepted(a)) {
        return Err(invalid("audience is invalid"));
    }
    match claims.exp {
        // Salesforce wants exp in the future and no more than 3 minutes ahead.
        Some(exp) if exp > now.timestamp() && exp <= now.timestamp() + 180 => {}
        _ => return Err(invalid("expired authorization code")),
    }
    if claims.sub.as_deref() != Some(org.config.username.as_str()) {
        return Err(invalid("user hasn't approved this consumer"));
    }
    Ok(Flow::Jwt)
}

fn client_credentials(
    org: &OrgState,
    request: &TokenRequest,
    headers: &HeaderMap,
) -> Result<Flow, OAuthError> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // The flow is only offered on the org's My Domain; the shared login hosts refuse it.
    if host.starts_with("login.") || host.starts_with("test.") {
        return Err(oauth_error(
            "invalid_grant",
            "request not supported on this domain",
        ));
    }
    check_client(org, request, true)?;
    Ok(Flow::ClientCredentials)
}

fn refresh(org: &OrgState, request: &TokenRequest) -> Result<Flow, OAuthError> {
    check_client(org, request, false)?;
    let known = request.refresh_token.as_deref().is_some_and(|t| {
        org.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refresh_tokens
            .contains(t)
    });
    if !known {
        return Err(oauth_error("invalid_grant", "expired access/refresh token"));
    }
    Ok(Flow::Refresh)
}

fn check_client(
    org: &OrgState,
    request: &TokenRequest,
    secret_required: bool,
) -> Result<(), OAuthError> {
    if request.client_id.as_deref() != Some(org.config.client_id.as_str()) {
        return Err(oauth_error(
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    let secret_ok = match request.client_secret.as_deref() {
        Some(secret) => secret == org.config.client_secret,
        None => !secret_required,
    };
    if !secret_ok {
        return Err(oauth_error("invalid_client", "invalid client credentials"));
    }
    Ok(())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Salesforce signs `id + issued_at` with the consumer secret (HMAC-SHA256, base64).
fn signature(secret: &str, id: &serde_json::Value, issued_at: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(id.as_str().unwrap_or_default().as_bytes());
    mac.update(issued_at.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Form bodies are parsed leniently: unknown keys are ignored, a malformed body is an empty request.
fn serde_urlencoded_form(body: &str) -> TokenRequest {
    let mut request = TokenRequest::default();
    for (key, value) in url::form_urlencoded::parse(body.as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "grant_type" => request.grant_type = value,
            "assertion" => request.assertion = value,
            "client_id" => request.client_id = value,
            "client_secret" => request.client_secret = value,
            "refresh_token" => request.refresh_token = value,
            _ => {}
        }
    }
    request
}
