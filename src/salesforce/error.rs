//! What went wrong talking to Salesforce, classified by what the caller must do.

/// One error per Salesforce call; the variant tells the caller how to react.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SalesforceError {
    /// Credentials refused (`invalid_grant`, `invalid_client_id`, …, or a fresh session still
    /// answering 401): the operator must fix the configuration. Carries Salesforce's own `error` and
    /// `error_description` and a hint at the usual fix.
    #[error("Salesforce refused the credentials: {error}: {description} ({hint})")]
    Auth {
        error: String,
        description: String,
        hint: String,
    },
    /// Outage, 5xx, network failure, or a timeout on a read or before the request could reach
    /// Salesforce: retry later, nothing was lost.
    #[error("Salesforce is unavailable: {0}")]
    Unavailable(String),
    /// 403 `REQUEST_LIMIT_EXCEEDED`: the org's daily API allowance is spent; back off until it
    /// recovers (a rolling 24 h window).
    #[error("Salesforce API request limit exceeded (TotalRequests)")]
    LimitExceeded,
    /// Any other error answer `[{"message","errorCode","fields"}]` (MALFORMED_QUERY, INVALID_FIELD,
    /// NOT_FOUND, …): the request itself is wrong; retrying will not help.
    #[error("Salesforce answered {status} {error_code}: {message}")]
    Api {
        status: u16,
        error_code: String,
        message: String,
    },
    /// The answer to a request that reached Salesforce could not be read (connection dropped
    /// mid-body, timeout while waiting, unexpected JSON): for writes the outcome is unknown.
    #[error("unreadable answer from Salesforce: {0}")]
    BadResponse(String),
}

impl SalesforceError {
    /// Whether trying the same call later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SalesforceError::Unavailable(_)
                | SalesforceError::LimitExceeded
                | SalesforceError::BadResponse(_)
        )
    }

    /// An `Auth` error with the hint that fits Salesforce's `error` / `error_description`.
    pub fn auth(error: &str, description: &str) -> SalesforceError {
        SalesforceError::Auth {
            error: error.to_string(),
            description: description.to_string(),
            hint: auth_hint(error, description).to_string(),
        }
    }
}

/// The usual fix for each refusal Salesforce's token endpoint and REST API give.
fn auth_hint(error: &str, description: &str) -> &'static str {
    let description = description.to_ascii_lowercase();
    match (error, description.as_str()) {
        (_, d) if d.contains("hasn't approved this consumer") || d.contains("not approved") => {
            "pre-authorise the External Client App: in its Policies set Permitted Users to 'Admin \
             approved users are pre-authorized' and select the WhatsApp_Integration permission set, \
             then assign that permission set to the integration user"
        }
        (_, d) if d.contains("audience is invalid") => {
            "the JWT audience must be https://login.salesforce.com (production), \
             https://test.salesforce.com (sandbox) or the org's My Domain URL"
        }
        (_, d) if d.contains("invalid assertion") => {
            "the private key must match the certificate uploaded to the External Client App's \
             OAuth settings, and client_id must be that app's consumer key"
        }
        (_, d) if d.contains("not supported on this domain") => {
            "the client credentials flow only works against the org's My Domain URL: set login_url \
             to https://<domain>.my.salesforce.com"
        }
        (_, d) if d.contains("no client credentials user enabled") => {
            "choose a Run As user (an API-only user) under the External Client App's policies, \
             Client Credentials Flow"
        }
        (_, d) if d.contains("expired access/refresh token") => {
            "the refresh token was revoked or expired: authorise the app again for a new one"
        }
        (_, d) if d.contains("expired authorization code") => {
            "the JWT exp was in the past or over 3 minutes ahead by Salesforce's clock: check \
             this host's clock (NTP)"
        }
        (_, d) if d.contains("user is not admin approved") || d.contains("inactive user") => {
            "the integration user must be active and hold the permission set the External Client \
             App's policies pre-authorise (WhatsApp_Integration)"
        }
        ("invalid_client_id", _) => {
            "the consumer key is unknown: copy it from the External Client App (new apps take up to 10 \
             minutes to propagate)"
        }
        ("invalid_client", _) => "the consumer key or consumer secret is wrong",
        ("INVALID_SESSION_ID", _) => {
            "a fresh session was refused: check the integration user is active and has API Enabled"
        }
        _ => "check login_url and the External Client App's credentials",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unapproved_consumer_hints_at_pre_authorisation() {
        let SalesforceError::Auth { hint, .. } =
            SalesforceError::auth("invalid_grant", "user hasn't approved this consumer")
        else {
            unreachable!()
        };
        assert!(hint.contains("pre-authori"), "{hint}");
    }

    #[test]
    fn client_credentials_on_login_domain_hints_at_my_domain() {
        let SalesforceError::Auth { hint, .. } =
            SalesforceError::auth("invalid_grant", "request not supported on this domain")
        else {
            unreachable!()
        };
        assert!(hint.contains("My Domain"), "{hint}");
    }
}
