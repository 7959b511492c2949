//! The one HTTP client every check that calls Salesforce or Meta uses (its own user agent).

pub(super) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("sfwa-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
