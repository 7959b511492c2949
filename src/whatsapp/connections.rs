//! [`SendConnections`]: the connections sends go over, HTTP/2 where the Graph API speaks it.
//!
//! Meta's Graph API speaks HTTP/2 (`h2` by ALPN on `graph.facebook.com`). Over HTTP/1.1 every
//! send in flight holds a TCP (and TLS) connection of its own: at 1,000 sends/s and a 200 ms
//! round trip that is ≈ 400 connections per number, each with its buffers, dispatch channel and
//! TLS state (≈ 35 KB apiece on the loopback bench, more with TLS). Over HTTP/2 one connection
//! carries many sends at once, each a stream.
//!
//! A server caps the streams open at once on a connection (`SETTINGS_MAX_CONCURRENT_STREAMS`);
//! Meta does not publish its cap, and RFC 9113 recommends servers allow at least 100. A
//! `reqwest::Client` keeps one HTTP/2 connection per host and queues sends beyond the server's
//! cap on it, so sends are spread over several clients: each send leases the first connection
//! with fewer than [`STREAMS_PER_CONNECTION`] sends in flight, and a connection is opened only
//! when every open one is that busy. A send the server would refuse for the cap is never made:
//! it waits on its connection instead.
//!
//! `whatsapp.http2` chooses: `auto` (HTTP/2 when the server offers it over TLS, HTTP/1.1 over
//! plain `http://`), `always` (HTTP/2 only, also in clear text: what the simulator speaks too),
//! `off` (HTTP/1.1 only). Over HTTP/1.1 the same leasing spreads sends over the clients' pools.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Sends a connection carries at once before the next one is opened.
pub const STREAMS_PER_CONNECTION: usize = 100;

/// Connections opened at most. Beyond `MAX_CONNECTIONS × STREAMS_PER_CONNECTION` sends in flight
/// (several numbers at Meta's highest tier) each send goes to the least busy connection.
pub const MAX_CONNECTIONS: usize = 32;

/// Which HTTP version sends use (`whatsapp.http2`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Http2 {
    /// HTTP/2 when the server offers it (ALPN, over TLS); HTTP/1.1 otherwise.
    #[default]
    Auto,
    /// HTTP/2 only, in clear text too (prior knowledge).
    Always,
    /// HTTP/1.1 only.
    Off,
}

/// The clients sends are spread over. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SendConnections {
    http2: Http2,
    connections: Box<[Connection]>,
}

#[derive(Debug, Default)]
struct Connection {
    /// Built when first needed: a client connects on its first request, so an unused one costs
    /// nothing on the wire.
    http: OnceLock<reqwest::Client>,
    in_flight: AtomicUsize,
}

/// One send's use of a connection, given back when dropped.
#[derive(Debug)]
pub struct Lease<'a> {
    connection: &'a Connection,
}

impl Lease<'_> {
    pub fn http(&self) -> &reqwest::Client {
        self.connection
            .http
            .get()
            .expect("a leased connection has its client")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.connection.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SendConnections {
    /// Builds the first client at once, so a client that cannot be built is an error at start.
    pub fn new(http2: Http2) -> reqwest::Result<SendConnections> {
        let connections: Box<[Connection]> = (0..MAX_CONNECTIONS)
            .map(|_| Connection::default())
            .collect();
        let first = client(http2)?;
        let _ = connections[0].http.set(first);
        Ok(SendConnections { http2, connections })
    }

    /// The connection this send goes over: the first with room, else a new one, else the least
    /// busy (see the module docs).
    pub fn lease(&self) -> Lease<'_> {
        let index = pick(
            self.connections
                .iter()
                .map(|c| c.http.get().map(|_| c.in_flight.load(Ordering::Relaxed))),
        );
        let connection = &self.connections[index];
        connection.http.get_or_init(|| {
            // The first client was built with the same settings, so this does not fail; if it
            // did, the send shares the first connection.
            client(self.http2).unwrap_or_else(|_| self.first().clone())
        });
        connection.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease { connection }
    }

    /// Sends in flight per connection opened so far.
    pub fn in_flight(&self) -> Vec<usize> {
        self.connections
            .iter()
            .filter(|c| c.http.get().is_some())
            .map(|c| c.in_flight.load(Ordering::Relaxed))
            .collect()
    }

    fn first(&self) -> &reqwest::Client {
        self.connections[0]
            .http
            .get()
            .expect("the first client is built in new")
    }
}

/// Which connection to use, given each one's sends in flight (`None`: not opened yet, and every
/// later one neither): the first opened with fewer than [`STREAMS_PER_CONNECTION`], else the first
/// not opened, else the least busy.
fn pick(loads: impl Iterator<Item = Option<usize>>) -> usize {
    let mut least = (0, usize::MAX);
    for (index, load) in loads.enumerate() {
        match load {
            Some(n) if n < STREAMS_PER_CONNECTION => return index,
            Some(n) if n < least.1 => least = (index, n),
            Some(_) => {}
            None => return index,
        }
    }
    least.0
}

fn client(http2: Http2) -> reqwest::Result<reqwest::Client> {
    let builder =
        reqwest::Client::builder().user_agent(concat!("sfwa/", env!("CARGO_PKG_VERSION")));
    match http2 {
        Http2::Auto => builder,
        Http2::Always => builder.http2_prior_knowledge(),
        Http2::Off => builder.http1_only(),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_takes_the_first_connection_with_room() {
        let loads = [Some(STREAMS_PER_CONNECTION), Some(3), None];
        assert_eq!(pick(loads.into_iter()), 1);
    }

    #[test]
    fn a_connection_is_opened_only_when_every_open_one_is_full() {
        let loads = [
            Some(STREAMS_PER_CONNECTION),
            Some(STREAMS_PER_CONNECTION),
            None,
            None,
        ];
        assert_eq!(pick(loads.into_iter()), 2);
    }

    #[test]
    fn with_every_connection_open_and_full_the_least_busy_takes_the_send() {
        let loads = [
            Some(STREAMS_PER_CONNECTION + 7),
            Some(STREAMS_PER_CONNECTION + 2),
            Some(STREAMS_PER_CONNECTION + 5),
        ];
        assert_eq!(pick(loads.into_iter()), 1);
    }

    #[test]
    fn leases_fill_one_connection_before_opening_the_next_and_are_given_back_when_dropped() {
        let connections = SendConnections::new(Http2::Off).unwrap();
        let first: Vec<Lease<'_>> = (0..STREAMS_PER_CONNECTION)
            .map(|_| connections.lease())
            .collect();
        assert_eq!(connections.in_flight(), vec![STREAMS_PER_CONNECTION]);
        let second = connections.lease();
        assert_eq!(connections.in_flight(), vec![STREAMS_PER_CONNECTION, 1]);
        drop(first);
        drop(second);
        assert_eq!(connections.in_flight(), vec![0, 0]);
        let _again = connections.lease();
        assert_eq!(connections.in_flight(), vec![1, 0]);
    }
}
