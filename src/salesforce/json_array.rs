//! A JSON array read as it arrives: each element handed over as soon as its last byte is in, so a
//! large answer is never held whole.
//!
//! One CometD connect after a pause can carry a whole backlog's events (Salesforce: "the number of
//! event messages in a batch can vary"). Collecting such an answer before parsing it held the
//! body twice (its network chunks, then one contiguous copy) beside the parsed messages: with a
//! 100,000-event backlog that was the daemon's peak RSS. [`ArrayPieces`] finds where each
//! top-level element starts and ends, string escapes included, and leaves parsing the element to
//! the caller; only an element cut across two chunks is copied.

use std::fmt;

/// Splits a JSON array fed in pieces into its top-level elements.
#[derive(Debug, Default)]
pub struct ArrayPieces {
    state: State,
    /// The start of an element whose end is in a later piece.
    carry: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    #[default]
    Start,
    /// Between elements; `after_element`: a `,` or the closing `]` must come next.
    Between { after_element: bool },
    /// Inside an element.
    Element(Scan),
    /// After the closing `]`: only whitespace may follow.
    Done,
}

/// Where the scan is inside one element.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// Open `{` and `[` inside the element.
    depth: u32,
    in_string: bool,
    escaped: bool,
}

/// The bytes are not one JSON array (the elements themselves are the caller's to judge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnArray {
    /// The first byte that is not whitespace is not `[`: a single object or another document.
    /// Nothing was handed over; the caller reads the whole body another way.
    OtherDocument,
    /// Something other than `,` or `]` after an element, or bytes after the closing `]`.
    Malformed { at: usize },
    /// The body ended before the closing `]`.
    Unfinished,
}

impl fmt::Display for NotAnArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAnArray::OtherDocument => f.write_str("not a JSON array"),
            NotAnArray::Malformed { at } => {
                write!(f, "not a well-formed JSON array (byte {at} of a piece)")
            }
            NotAnArray::Unfinished => f.write_str("the array ends before its closing `]`"),
        }
    }
}

impl ArrayPieces {
    /// Scans the next piece, calling `element` with each element that ends in it, in order.
    /// The caller's error stops the scan and is returned as `Ok(Err(..))`.
    pub fn feed<E>(
        &mut self,
        piece: &[u8],
        mut element: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, NotAnArray> {
        // Where the element in progress starts in this piece (0 when it began in an earlier one).
        let mut start = 0;
        for (at, &byte) in piece.iter().enumerate() {
            match &mut self.state {
                State::Start => match byte {
                    b'[' => {
                        self.state = State::Between {
                            after_element: false,
                        }
                    }
                    _ if byte.is_ascii_whitespace() => {}
                    _ => return Err(NotAnArray::OtherDocument),
                },
                State::Between { after_element } => match byte {
                    _ if byte.is_ascii_whitespace() => {}
                    b',' if *after_element => *after_element = false,
                    b']' => self.state = State::Done,
                    _ if *after_element => return Err(NotAnArray::Malformed { at }),
                    _ => {
                        start = at;
                        let mut scan = Scan::default();
                        scan.step(byte);
                        self.state = State::Element(scan);
                    }
                },
                State::Element(scan) => {
                    let opened = scan.depth > 0 || scan.in_string;
                    if !opened && (byte == b',' || byte == b']' || byte.is_ascii_whitespace()) {
                        // A scalar element ends before this byte, which belongs to the array.
                        if let Err(e) = self.hand_over(&piece[start..at], &mut element) {
                            return Ok(Err(e));
                        }
                        self.state = match byte {
                            b']' => State::Done,
                            b',' => State::Between {
                                after_element: false,
                            },
                            _ => State::Between {
                                after_element: true,
                            },
                        };
                        continue;
                    }
                    if scan.step(byte) && scan.depth == 0 && !scan.in_string {
                        if let Err(e) = self.hand_over(&piece[start..=at], &mut element) {
                            return Ok(Err(e));
                        }
                        self.state = State::Between {
                            after_element: true,
                        };
                    }
                }
                State::Done if byte.is_ascii_whitespace() => {}
                State::Done => return Err(NotAnArray::Malformed { at }),
            }
        }
        if let State::Element(_) = self.state {
            self.carry.extend_from_slice(&piece[start..]);
        }
        Ok(Ok(()))
    }

    /// At the end of the body: whether the array was closed.
    pub fn finish(&self) -> Result<(), NotAnArray> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(NotAnArray::Unfinished),
        }
    }

    /// Hands over an element whose last bytes are `tail` (its first ones may be in `carry`).
    fn hand_over<E>(
        &mut self,
        tail: &[u8],
        element: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.carry.is_empty() {
            return element(tail);
        }
        self.carry.extend_from_slice(tail);
        let result = element(&self.carry);
        self.carry.clear();
        result
    }
}

impl Scan {
    /// Takes one byte of the element; `true` when it changed the nesting (a bracket or a quote
    /// outside a string, or the quote that closes a string).
    fn step(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                return true;
            }
            return false;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The elements of `body` fed in pieces of `size` bytes, as text.
    fn elements_in_pieces(body: &str, size: usize) -> Result<Vec<String>, NotAnArray> {
        let mut pieces = ArrayPieces::default();
        let mut found = Vec::new();
        for piece in body.as_bytes().chunks(size) {
            pieces
                .feed(piece, |element| {
                    found.push(String::from_utf8(element.to_vec()).unwrap());
                    Ok::<(), ()>(())
                })?
                .unwrap();
        }
        pieces.finish()?;
        Ok(found)
    }

    #[test]
    fn every_element_comes_out_whole_whatever_the_piece_size() {
        let body = r#" [ {"a":"x,]}\"{[","b":[1,{"c":2}]} , [3,4],"s\\",12 ,true,
            {"d":{}} ] "#;
        let expected = vec![
            r#"{"a":"x,]}\"{[","b":[1,{"c":2}]}"#,
            "[3,4]",
            r#""s\\""#,
            "12",
            "true",
            r#"{"d":{}}"#,
        ];
        for size in 1..=body.len() {
            assert_eq!(
                elements_in_pieces(body, size).unwrap(),
                expected,
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn each_element_is_valid_json_when_the_array_is() {
        let body = r#"[{"channel":"/event/E__e","data":{"payload":{"T":"é \u00e9 \"q\""}}},{"channel":"/meta/connect","successful":true}]"#;
        let whole: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
        for size in [1, 3, 7, 64] {
            let parsed: Vec<serde_json::Value> = elements_in_pieces(body, size)
                .unwrap()
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect();
            assert_eq!(parsed, whole, "pieces of {size}");
        }
    }

    #[test]
    fn an_empty_array_has_no_elements() {
        assert_eq!(
            elements_in_pieces(" [ ] ", 2).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_single_object_is_another_document_and_nothing_is_handed_over() {
        assert_eq!(
            elements_in_pieces(r#" {"channel":"/meta/connect"}"#, 4),
            Err(NotAnArray::OtherDocument)
        );
    }

    #[test]
    fn a_cut_off_array_is_unfinished_and_bytes_after_it_are_malformed() {
        assert_eq!(
            elements_in_pieces(r#"[{"a":1},{"b":"#, 5),
            Err(NotAnArray::Unfinished)
        );
        assert!(matches!(
            elements_in_pieces(r#"[{"a":1}] x"#, 50),
            Err(NotAnArray::Malformed { .. })
        ));
        assert!(matches!(
            elements_in_pieces(r#"[{"a":1}{"b":2}]"#, 50),
            Err(NotAnArray::Malformed { .. })
        ));
    }

    #[test]
    fn the_callers_error_stops_the_scan() {
        let mut pieces = ArrayPieces::default();
        let mut seen = 0;
        let result = pieces
            .feed(br#"[{"a":1},{"b":2}]"#, |_| {
                seen += 1;
                Err("refused")
            })
            .unwrap();
        assert_eq!((result, seen), (Err("refused"), 1));
    }
}
