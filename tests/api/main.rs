//! One integration-test binary: every test starts real servers on loopback port 0 and talks HTTP.
mod daemon_send;
mod daemon_support;
mod helpers;
mod salesforce_auth;
mod salesforce_client;
mod salesforce_flow;
mod salesforce_rest;
mod sim_cli;
mod streaming;
mod webhook_payload;
mod whatsapp_client;
mod whatsapp_control;
mod whatsapp_send;
mod whatsapp_support;
mod whatsapp_webhooks;
mod whatsapp_wire_shapes;
