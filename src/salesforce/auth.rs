//! Logging in: the three OAuth 2.0 grants sfwa supports, against `{login_url}/services/oauth2/token`.
//!
//! JWT bearer is the default for a daemon (no secret on the wire, no user interaction); client
//! credentials works only against a My Domain URL; the refresh-token grant suits orgs whose
//! security team hands out a refresh token instead of a certificate.
//!
//! **Why a direct form POST and not the `oauth2` crate.** `oauth2` has no JWT bearer grant
//! (RFC 7523), the flow sfwa uses by default, so that one would be a hand-written POST anyway; and
//! Salesforce's token answer carries what matters outside the standard fields (`instance_url`, where
//! every REST call must go) while omitting `expires_in`. Using the crate for the two other grants
//! would mean two token code paths, two error mappings (Salesforce's `error_description` drives the
//! operator hints in [`super::error`]) and another HTTP integration for one form POST that is the
//! same for all three grants. The request is a few form fields; the answer is parsed into the two
//! fields the client needs.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::error::SalesforceError;

/// How sfwa proves who it is to Salesforce.
#[derive(Clone)]
pub enum Auth {
    /// JWT bearer (RS256): iss = client_id, sub = username, aud = audience
    /// (`https://login.salesforce.com`, `https://test.salesforce.com`, or the My Domain URL),
    /// exp = now + 3 min at most. The External Client App must pre-authorise the user
    /// (admin-approved users, through a permission set).
    JwtBearer {
        client_id: String,
        username: String,
        private_key_pem: String,
        audience: String,
    },
    /// Client credentials (the External Client App's Run As user); only against a My Domain login_url.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
    /// A refresh token issued earlier; Salesforce returns no new refresh token.
    RefreshToken {
        client_id: String,
        client_secret: Option<String>,
        refresh_token: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Consumer keys and usernames identify; keys, secrets and tokens never leave the process.
        match self {
            Auth::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("JwtBearer")
                .field("client_id", client_id)
                .field("username", username)
                .field("private_key_pem", &"<redacted>")
                .field("audience", audience)
                .finish(),
            Auth::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            Auth::RefreshToken {
                client_id,
                client_secret,
                ..
            } => f
                .debug_struct("RefreshToken")
                .field("client_id", client_id)
                .field(
                    "client_secret",
                    &client_secret.as_ref().map(|_| "<redacted>"),
                )
                .field("refresh_token", &"<redacted>")
                .finish(),
        }
    }
}

/// A logged-in session: the bearer token and the instance every REST call goes to.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub access_token: String,
    /// From the token response (e.g. `https://acme.my.salesforce.com`), without a trailing slash;
    /// it is not the login URL.
    pub instance_url: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"<redacted>")
            .field("instance_url", &self.instance_url)
            .finish()
    }
}

/// How far ahead the assertion expires. Salesforce allows at most 3 minutes by *its* clock; 150 s
/// leaves room for this host's clock running a little ahead.
const JWT_LIFETIME_SECONDS: i64 = 150;

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Credentials made ready once: the token URL built and the PEM parsed (so a bad key fails at
/// start-up, not at the first login).
pub(crate) struct Login {
    token_url: String,
    auth: Auth,
    jwt_key: Option<EncodingKey>,
}

#[derive(Serialize)]
struct JwtClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Login {
    pub(crate) fn prepare(login_url: &str, auth: Auth) -> Result<Login, SalesforceError> {
        let jwt_key = match &auth {
            Auth::JwtBearer {
                private_key_pem, ..
            } => Some(
                EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
                    SalesforceError::Auth {
                        error: "invalid_private_key".into(),
                        description: format!("the private key is not a PEM RSA key: {e}"),
                        hint: "private_key_pem must hold the RSA private key whose certificate is \
                               uploaded to the External Client App"
                            .into(),
                    }
                })?,
            ),
            _ => None,
        };
        Ok(Login {
            token_url: format!("{}/services/oauth2/token", login_url.trim_end_matches('/')),
            auth,
            jwt_key,
        })
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    /// One token request. Refusals are [`SalesforceError::Auth`]; outages and network failures are
    /// [`SalesforceError::Unavailable`] (logging in has no side effects, so it is always safe to retry).
    #[tracing::instrument(skip_all, fields(grant = self.grant_name(), token_url = %self.token_url))]
    pub(crate) async fn request_token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Session, SalesforceError> {
        let form = self.form()?;
        let response = http
            .post(&self.token_url)
            .timeout(timeout)
            .form(&form)
            .send()
            .await
            .map_err(|e| SalesforceError::Unavailable(format!("token request failed: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SalesforceError::Unavailable(format!("token response unreadable: {e}")))?;
        if status.is_success() {
            let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                SalesforceError::BadResponse(format!("token response without a session: {e}"))
            })?;
            tracing::debug!(instance_url = %token.instance_url, "logged in");
            return Ok(Session {
                access_token: token.access_token,
                instance_url: token.instance_url.trim_end_matches('/').to_string(),
            });
        }
        if status.is_server_error() {
            return Err(SalesforceError::Unavailable(format!(
                "token endpoint answered {status}"
            )));
        }
        let error = match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) => SalesforceError::auth(&e.error, &e.error_description),
            Err(_) => SalesforceError::Auth {
                error: format!("http_{}", status.as_u16()),
                description: String::from_utf8_lossy(&body).chars().take(200).collect(),
                hint: "the token endpoint did not answer like Salesforce: check login_url".into(),
            },
        };
        tracing::warn!(%error, "login refused");
        Err(error)
    }

    fn grant_name(&self) -> &'static str {
        match self.auth {
            Auth::JwtBearer { .. } => "jwt_bearer",
            Auth::ClientCredentials { .. } => "client_credentials",
            Auth::RefreshToken { .. } => "refresh_token",
        }
    }

    fn form(&self) -> Result<Vec<(&'static str, String)>, SalesforceError> {
        Ok(match &self.auth {
            Auth::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => vec![
                ("grant_type", JWT_BEARER_GRANT.to_string()),
                ("assertion", self.assertion(client_id, username, audience)?),
            ],
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
            ],
            Auth::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh_token.clone()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.clone()));
                }
                form
            }
        })
    }

    /// The signed assertion. `exp` uses the system clock on purpose: Salesforce checks it against
    /// its own clock, so a simulated or shifted application clock would only cause refusals.
    fn assertion(
        &self,
        client_id: &str,
        username: &str,
        audience: &str,
    ) -> Result<String, SalesforceError> {
        // `prepare` always parses the key for this grant; the error is only a guard.
        let Some(key) = self.jwt_key.as_ref() else {
            return Err(SalesforceError::auth(
                "invalid_private_key",
                "no private key",
            ));
        };
        let claims = JwtClaims {
            iss: client_id,
            sub: username,
            aud: audience.trim_end_matches('/'),
            exp: chrono::Utc::now().timestamp() + JWT_LIFETIME_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key).map_err(|e| {
            SalesforceError::Auth {
                error: "invalid_private_key".into(),
                description: format!("signing the JWT assertion failed: {e}"),
                hint: "private_key_pem must hold an RSA private key".into(),
            }
        })
    }
}
