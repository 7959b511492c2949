//! "Salesforce login": logs in with the configured grant; the client it returns is what the
//! other Salesforce checks use.

use crate::config::{AuthMode, Settings};
use crate::doctor::clients::http_client;
use crate::doctor::report::Check;
use crate::salesforce::{SalesforceClient, SalesforceError};

pub(in crate::doctor) const LOGIN: &str = "Salesforce login";

/// Logs in with the configured grant. Returns the client for the checks that need Salesforce.
pub(in crate::doctor) async fn check_login(
    settings: &Settings,
) -> (Check, Option<SalesforceClient>) {
    let sf = &settings.salesforce;
    let mode = match sf.auth {
        AuthMode::Jwt => format!("jwt as {}", sf.username),
        AuthMode::ClientCredentials => {
            "client_credentials, as the External Client App's Run As user".into()
        }
        AuthMode::RefreshToken => "refresh_token".into(),
    };
    let config = match crate::app::salesforce_config(settings) {
        Ok(config) => config,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{error:#}"),
                    "fix salesforce.private_key_path",
                ),
                None,
            )
        }
    };
    let client = match SalesforceClient::new(http_client(), config) {
        Ok(client) => client,
        Err(error) => {
            return (
                Check::fail(
                    LOGIN,
                    format!("{mode}: {error}"),
                    "point salesforce.private_key_path at the PEM RSA private key whose \
                        certificate is uploaded to the External Client App",
                ),
                None,
            )
        }
    };
    match client.session().await {
        Ok(session) => (
            Check::pass(LOGIN, format!("{mode}; instance {}", session.instance_url)),
            Some(client),
        ),
        Err(SalesforceError::Auth {
            error,
            description,
            hint,
        }) => (
            Check::fail(
                LOGIN,
                format!("{mode}: Salesforce answered {error}: {description}"),
                hint,
            ),
            None,
        ),
        Err(SalesforceError::Unavailable(message)) => (
            Check::fail(
                LOGIN,
                format!("{mode}: cannot reach {}: {message}", sf.login_url),
                "check salesforce.login_url, DNS and any proxy or firewall between this \
                    host and Salesforce",
            ),
            None,
        ),
        Err(error) => (
            Check::fail(
                LOGIN,
                format!("{mode}: {error}"),
                "check salesforce.login_url and the External Client App's OAuth settings",
            ),
            None,
        ),
    }
}
