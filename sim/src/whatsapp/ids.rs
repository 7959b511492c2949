//! Identifiers shaped like Meta's: message ids (`wamid.HBgL…`) and `fbtrace_id`s.
//!
//! A real wamid is base64 of a small protobuf-like blob holding the customer's number and a hex
//! message key; clients sometimes log or truncate them, so the simulator keeps that shape.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;

/// Makes every wamid unique within the process even if the random part collided.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// Direction byte Meta's blob carries: outbound (business → customer) or inbound.
#[derive(Clone, Copy, Debug)]
pub enum WamidDirection {
    Outbound,
    Inbound,
}

/// A fresh wamid for a message exchanged with `wa_id`.
pub fn new_wamid(wa_id: &str, direction: WamidDirection) -> String {
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let random: u64 = rand::thread_rng().gen();
    // 18 hex digits for outbound keys, 20 for inbound, as in real ids.
    let key = match direction {
        WamidDirection::Outbound => format!("{:08X}{:010X}", sequence as u32, random >> 24),
        WamidDirection::Inbound => format!("{:08X}{:012X}", sequence as u32, random >> 16),
    };
    let phone = wa_id.as_bytes();
    let mut blob = Vec::with_capacity(phone.len() + key.len() + 10);
    blob.extend_from_slice(&[0x1C, 0x18, phone.len() as u8]);
    blob.extend_from_slice(phone);
    let marker = match direction {
        WamidDirection::Outbound => 0x11,
        WamidDirection::Inbound => 0x12,
    };
    blob.extend_from_slice(&[0x15, 0x02, 0x00, marker, 0x18, key.len() as u8]);
    blob.extend_from_slice(key.as_bytes());
    blob.push(0x00);
    format!("wamid.{}", STANDARD.encode(blob))
}

/// A trace id like `Az8or2yhqkZfEZ-_4Qn_Bam`: 23 URL-safe base64 characters starting with `A`.
pub fn new_fbtrace_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let encoded = URL_SAFE_NO_PAD.encode(bytes);
    format!("A{}", &encoded[..22])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_wamid_embeds_the_customer_number_like_meta() {
        let wamid = new_wamid("16505551234", WamidDirection::Outbound);
        assert!(
            wamid.starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI"),
            "{wamid}"
        );
    }

    #[test]
    fn wamids_are_unique() {
        let a = new_wamid("16505551234", WamidDirection::Outbound);
        let b = new_wamid("16505551234", WamidDirection::Outbound);
        assert_ne!(a, b);
    }

    #[test]
    fn fbtrace_ids_have_meta_length() {
        assert_eq!(new_fbtrace_id().len(), 23);
    }
}
