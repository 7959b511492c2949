//! WhatsApp Cloud API simulator (being built).
