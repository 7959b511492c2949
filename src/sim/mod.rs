//! Wire-faithful simulators of a Salesforce org and of the WhatsApp Cloud API.
pub mod clock;
pub mod salesforce;
pub mod sandbox;
pub mod server;
pub mod whatsapp;
