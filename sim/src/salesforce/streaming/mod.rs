//! The org's Streaming API: CometD / Bayeux 1.0 over HTTP long-polling at `POST /cometd/{version}`.
//!
//! This is what sfwa's listener talks to instead of Salesforce. The org simulator publishes platform
//! events (e.g. `/event/WhatsApp_Outbound__e`) on the [`EventBus`]; subscribers handshake, subscribe with
//! a replay position and long-poll `/meta/connect` to receive them, exactly as EMP-Connector, jsforce
//! (faye) or the CometD clients do against a real org.
//!
//! - [`bus`]: retained events per channel, replay ids, and the connected clients with their
//!   subscription positions. Shared (`Arc`) between the HTTP handlers and the control API.
//! - [`channels`]: custom channels (`/event/X__chn`) whose members filter events, and the daily
//!   event-delivery allocation (`DailyDeliveredPlatformEvents`) every delivery spends.
//! - [`clients`]: the Bayeux client registry (what a CometD server calls server sessions).
//! - [`messages`]: the wire shapes, field order as Salesforce sends them.
//! - [`bayeux`]: the router and the `/meta/*` handlers.
//!
//! Choices the tests and the control API rely on:
//! - **Cookies.** A successful handshake sets `BAYEUX_BROWSER` (CometD's per-browser id, only when the
//!   request has none) and `sfdc-stream` (Salesforce's load-balancer route to one app server). The
//!   simulator *enforces* `sfdc-stream` (configurable, [`StreamingConfig::require_route_cookie`]):
//!   a subscribe/connect without it is answered `403::Unknown client`, which is what a client without a
//!   cookie jar sees on a real multi-server org when its request lands on another app server.
//!   `BAYEUX_BROWSER` is set but not checked (CometD only uses it to detect several tabs).
//!   Cookies carry no `Secure` flag because the simulator speaks plain HTTP.
//! - **Time.** Retention and client expiry follow the [`SimClock`](crate::clock::SimClock), so a
//!   test can age events past 72 h, or idle a client out, with one `shift`. Long-poll holds use real time.
//! - **Replay ids** grow by a random 1..=5 so that clients cannot do arithmetic with them.

pub mod bayeux;
pub mod bus;
pub mod channels;
pub mod clients;
pub mod messages;

pub use bayeux::{router, Authorize, StreamingConfig};
pub use bus::{EventBus, PublishedEvent};
pub use channels::{ChannelError, ChannelMember, EventFilter};
