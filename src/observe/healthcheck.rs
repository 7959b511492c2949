//! `sfwa healthcheck`: asks a running sfwa's `GET /healthz` on its observe listener. The image's
//! `HEALTHCHECK` runs it (the slim image has no curl or wget), and `sfwa doctor` asks the same
//! to tell a running sfwa from another program on the port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long the whole check may take (Docker's default `--timeout` is 30 s; a live sfwa answers
/// in milliseconds).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// `http://<addr>/healthz` for a listener bound to `listen`; an unspecified address (0.0.0.0,
/// ::) is asked on loopback, where it also listens.
pub fn healthz_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// `Ok` on a 200 from `url`; otherwise one line saying why (refused, timed out, another status).
pub async fn check(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    match client.get(url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(error) if error.is_timeout() => Err(format!(
            "{url} did not answer within {}s",
            TIMEOUT.as_secs()
        )),
        Err(error) if error.is_connect() => Err(format!(
            "nothing answers at {url} (is sfwa running, and is observe.listen this address?)"
        )),
        Err(error) => Err(format!("{url}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        assert_eq!(
            healthz_url("0.0.0.0:9464".parse().unwrap()),
            "http://127.0.0.1:9464/healthz"
        );
        assert_eq!(
            healthz_url("[::]:9464".parse().unwrap()),
            "http://[::1]:9464/healthz"
        );
        assert_eq!(
            healthz_url("10.1.2.3:9000".parse().unwrap()),
            "http://10.1.2.3:9000/healthz"
        );
    }
}
