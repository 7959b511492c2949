//! How long a text is for Salesforce, and how much of an outside value is echoed back: shared by
//! the ids ([`super::ids`]), the message record ([`super::message`]) and the webhook events
//! ([`super::webhook_event`]), and so kept apart from each of them.

/// At most this many characters of a value from the payload are echoed into a reason, an error
/// or a log line: a signed body can still hold a megabyte in one string.
pub const ECHO_CHARS: usize = 200;

/// `text` cut to [`ECHO_CHARS`] characters (on a character boundary), `…` marking a cut.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Length as Salesforce counts it: in UTF-16 code units (a character outside the BMP, such as
/// most emoji, counts twice), which is never less than the count of characters.
pub fn salesforce_length(text: &str) -> usize {
    text.encode_utf16().count()
}
