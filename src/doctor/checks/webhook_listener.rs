//! "Webhook listener": the webhook address can be bound (or a running sfwa holds it: its observe
//! listener answers `/healthz`), and the secrets Meta's webhooks need are set.

use std::io::ErrorKind;

use crate::config::Settings;
use crate::doctor::report::Check;
use crate::observe::healthcheck;

pub(in crate::doctor) const WEBHOOK: &str = "Webhook listener";

/// The webhook address can be bound (or a running sfwa holds it), and the secrets are set.
pub(in crate::doctor) async fn check_webhook(settings: &Settings) -> Check {
    let addr = settings.webhook.listen;
    let path = &settings.webhook.path;
    let mut missing = Vec::new();
    if settings.whatsapp.app_secret.is_empty() {
        missing.push("whatsapp.app_secret");
    }
    if settings.whatsapp.verify_token.is_empty() {
        missing.push("whatsapp.verify_token");
    }
    if !missing.is_empty() {
        return Check::fail(
            WEBHOOK,
            format!(
                "{} not set, so Meta's webhooks cannot be verified",
                missing.join(" and ")
            ),
            "set the Meta app's secret (App settings → Basic) and a verify token of \
                your choice, the same one entered when registering the webhook",
        );
    }
    let listening = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            format!("{addr} is free for sfwa run")
        }
        Err(error) if error.kind() == ErrorKind::AddrInUse => {
            let healthz = healthcheck::healthz_url(settings.observe.listen);
            if healthcheck::check(&healthz).await.is_ok() {
                format!("{addr} is in use: a running sfwa answers {healthz}")
            } else {
                return Check::fail(
                    WEBHOOK,
                    format!("{addr} is in use by another program (nothing answers {healthz})"),
                    "stop that program, or set webhook.listen to a free port and route \
                        Meta's webhooks there",
                );
            }
        }
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return Check::fail(
                WEBHOOK,
                format!("not allowed to listen on {addr}: {error}"),
                "use a port above 1023 behind the TLS proxy, or grant CAP_NET_BIND_SERVICE",
            )
        }
        Err(error) => {
            return Check::fail(
                WEBHOOK,
                format!("cannot listen on {addr}: {error}"),
                "set webhook.listen to an address of this host, e.g. 0.0.0.0:8080",
            )
        }
    };
    Check::pass(
        WEBHOOK,
        format!("{listening}; webhooks on {path}; app secret and verify token set"),
    )
}
