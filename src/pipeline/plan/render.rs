//! The plan for people (a table, one line per record, and a summary) and for machines (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::verdict::{Entry, Verdict};
use super::Plan;

/// The columns of the table, in order.
const HEADERS: [&str; 6] = ["RECORD", "NUMBER", "TO", "MESSAGE", "ACTION", "WHY"];

/// The plan as a table: one line per record, then a count per action and the notes.
pub fn render_table(plan: &Plan) -> String {
    let rows: Vec<[String; 6]> = plan
        .entries
        .iter()
        .map(|entry| {
            [
                entry.record_id.clone(),
                entry.number.clone(),
                entry.to.clone().unwrap_or_else(|| "-".into()),
                entry.message.clone(),
                entry.verdict.action().to_string(),
                why(&entry.verdict),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        // The last column is not padded: it is as long as it needs to be.
        for (width, cell) in widths.iter_mut().zip(row).take(HEADERS.len() - 1) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = format!("sfwa plan at {} UTC\n", at(plan.at));
    line(&mut out, &HEADERS.map(String::from), &widths);
    for row in &rows {
        line(&mut out, row, &widths);
    }
    let _ = writeln!(out, "{}", summary(&plan.entries));
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The plan as JSON: `{"at", "entries": [{record_id, status, number, to, message, verdict:
/// {action, …}}], "notes"}`.
pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn line(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let mut text = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            text.push_str(cell);
        } else {
            let _ = write!(text, "{cell:<width$}  ");
        }
    }
    let _ = writeln!(out, "{}", text.trim_end());
}

/// The WHY column: the code and sentence, the time waited for, the reason.
fn why(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Send {
            window_expires_at: Some(until),
        } => format!("window open until {} UTC", at(*until)),
        Verdict::Send { .. } => "a template goes whatever the window".into(),
        Verdict::Refuse { code, message } => format!("{code}: {message}"),
        Verdict::Wait {
            until,
            code: _,
            reason,
        } => match until {
            Some(until) => format!("until {} UTC: {reason}", at(*until)),
            None => reason.clone(),
        },
        Verdict::Reengage {
            template,
            language,
            reason,
        } => format!("template {template} ({language}) first: {reason}"),
        Verdict::Skip { reason } => reason.clone(),
    }
}

/// `3 records: 1 send, 1 refuse, 1 wait`.
fn summary(entries: &[Entry]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        *counts.entry(entry.verdict.action()).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(action, n)| format!("{n} {action}"))
        .collect();
    match entries.len() {
        0 => "no records to plan".into(),
        1 => format!("1 record: {}", parts.join(", ")),
        n => format!("{n} records: {}", parts.join(", ")),
    }
}

fn at(when: DateTime<Utc>) -> String {
    when.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, verdict: Verdict) -> Entry {
        Entry {
            record_id: id.into(),
            status: Some("Queued".into()),
            number: "106540352242922".into(),
            to: Some("16505551234".into()),
            message: "Text".into(),
            verdict,
        }
    }

    #[test]
    fn the_table_has_a_line_per_record_with_its_reason_and_a_count_per_action() {
        let when = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let plan = Plan {
            at: when,
            entries: vec![
                entry(
                    "a01000000000001AAA",
                    Verdict::Send {
                        window_expires_at: Some(when),
                    },
                ),
                entry(
                    "a01000000000002AAA",
                    Verdict::Refuse {
                        code: "OUTSIDE_SESSION_WINDOW".into(),
                        message: "closed".into(),
                    },
                ),
                entry(
                    "a01000000000003AAA",
                    Verdict::wait(Some(when), None, "scheduled".into()),
                ),
            ],
            notes: vec!["no store".into()],
        };

        let table = render_table(&plan);
        let json: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();

        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7, "{table}");
        assert!(lines[1].starts_with("RECORD"), "{table}");
        assert!(lines[3].contains("refuse") && lines[3].contains("OUTSIDE_SESSION_WINDOW: closed"));
        assert!(
            lines[4].contains("until 2026-09-21 14:13:20 UTC: scheduled"),
            "{table}"
        );
        assert_eq!(lines[5], "3 records: 1 refuse, 1 send, 1 wait");
        assert_eq!(lines[6], "note: no store");
        assert_eq!(json["entries"][1]["verdict"]["action"], "refuse");
        assert_eq!(
            json["entries"][2]["verdict"]["until"],
            "2026-09-21T14:13:20Z"
        );
    }
}
