//! "Webhook listener": the webhook address can be bound (or a running sfwa answers on it), and
//! the secrets Meta's webhooks need are set.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Settings;
use crate::doctor::clients::http_client;
use crate::doctor::report::Check;

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
            if answers_healthz(addr).await {
                format!("{addr} is in use: a running sfwa answers /healthz there")
            } else {
                return Check::fail(
                    WEBHOOK,
                    format!("{addr} is in use by another program (nothing answers /healthz)"),
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

/// Whether something at `addr` answers `GET /healthz` with 2xx, as sfwa does.
async fn answers_healthz(addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/healthz", SocketAddr::new(ip, addr.port()));
    http_client()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
