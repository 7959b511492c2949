//! Shared test helpers: start simulators on port 0 and talk to them like a client would.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sfwa_sim::clock::SimClock;
use sfwa_sim::salesforce::{self, SalesforceSim, SalesforceSimConfig};

/// The simulators' shiftable clock, also as the daemon's `Clock`: one "now" for both
/// sides, so "25 hours later" is the same instant everywhere. The simulator crate does not know
/// the daemon's trait; this adapter is the link. Derefs to the `SimClock` (`shift`, `now`).
#[derive(Clone, Debug, Default)]
pub struct SimTime(pub SimClock);

impl sfwa::clock::Clock for SimTime {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

impl std::ops::Deref for SimTime {
    type Target = SimClock;

    fn deref(&self) -> &SimClock {
        &self.0
    }
}

/// A running Salesforce org simulator plus an HTTP client.
pub struct Org {
    pub sim: SalesforceSim,
    pub http: reqwest::Client,
}

impl Org {
    /// The daemon's Salesforce client for this org: JWT bearer with the simulator's trusted key.
    pub fn salesforce_client(&self) -> sfwa::salesforce::SalesforceClient {
        let config = self.sim.config();
        sfwa::salesforce::SalesforceClient::new(
            reqwest::Client::new(),
            sfwa::salesforce::SalesforceConfig {
                login_url: self.sim.url(),
                api_version: sfwa::salesforce::API_VERSION.into(),
                auth: sfwa::salesforce::Auth::JwtBearer {
                    client_id: config.client_id.clone(),
                    username: config.username.clone(),
                    private_key_pem: config.trusted_key.private_pem.clone(),
                    audience: "https://login.salesforce.com".into(),
                },
                timeout: std::time::Duration::from_secs(10),
            },
        )
        .expect("the client builds")
    }
}

pub async fn spawn_org() -> Org {
    spawn_org_with(SalesforceSimConfig::for_tests()).await
}

pub async fn spawn_org_with(config: SalesforceSimConfig) -> Org {
    let sim = salesforce::start(config)
        .await
        .expect("the simulator starts");
    Org {
        sim,
        http: reqwest::Client::new(),
    }
}

/// A signed JWT bearer assertion with the given claims.
pub fn assertion(org: &Org, claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        org.sim.config().trusted_key.private_pem.as_bytes(),
    )
    .unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

/// Claims Salesforce accepts: iss = consumer key, sub = username, aud = login, exp = now + 2 min.
pub fn good_claims(org: &Org) -> Value {
    json!({
        "iss": org.sim.config().client_id,
        "sub": org.sim.config().username,
        "aud": "https://login.salesforce.com",
        "exp": org.sim.clock().now().timestamp() + 120,
    })
}

impl Org {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.url(), path)
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Logs in with the JWT bearer flow and returns the access token.
    pub async fn login(&self) -> String {
        let jwt = assertion(self, good_claims(self));
        let response = self
            .token_request(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &jwt),
            ])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    pub fn rest(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                self.url(&format!(
                    "/services/data/v{}/{path}",
                    sfwa::salesforce::API_VERSION
                )),
            )
            .bearer_auth(token)
    }

    /// A REST call with a JSON body; returns the status and the JSON answer (null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .rest(method, token, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs a SOQL query and returns the status and JSON body.
    pub async fn query(&self, token: &str, soql: &str) -> (u16, Value) {
        let response = self
            .rest(reqwest::Method::GET, token, "query")
            .query(&[("q", soql)])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Seeds records through the control API (not counted as API usage); returns their Ids.
    pub async fn seed(&self, object: &str, records: Value) -> Vec<String> {
        seed_records(&self.http, &self.sim.url(), object, records).await
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(self.url("/__sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.url(&format!("/__sim/{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "control {path} failed");
        response.json().await.unwrap()
    }
}

/// Inserts records into the org simulator through DML (Flows included), returning their Ids.
pub async fn seed_records(
    http: &reqwest::Client,
    org_url: &str,
    object: &str,
    records: Value,
) -> Vec<String> {
    let response = http
        .post(format!("{org_url}/__sim/records/{object}"))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
