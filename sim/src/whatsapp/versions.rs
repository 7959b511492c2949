//! Which Graph version answers a call, as Meta decides it: the simulator's own list, kept apart
//! from the client's (`whatsapp::versions`) so the two can disagree and a test can notice.
//!
//! Meta's rule (Platform Versioning): a call to a version that is no longer available is not
//! refused — it is answered as the oldest version still available, and the `facebook-api-version`
//! response header names the version that answered. The simulator does the same, on its clock.
//! A version Meta has not released (newer than any here, or not yet out on the simulated date) is
//! refused with the unknown-path error (2500), as a malformed version segment is.

use chrono::{DateTime, NaiveDate, Utc};

use super::graph_error::GraphError;

/// A calendar date as (year, month, day).
type Ymd = (i32, u32, u32);

/// `(major, released, ended)`: Graph versions v17–v26 (all `.0`), from Meta's changelog as the
/// reference gathered it (v20 ended 2026-09-24, v21 ends 2027-01-21; v26 has no end date yet).
const VERSIONS: &[(u32, Ymd, Option<Ymd>)] = &[
    (17, (2023, 5, 23), Some((2025, 9, 12))),
    (18, (2023, 9, 12), Some((2026, 1, 26))),
    (19, (2024, 1, 23), Some((2026, 5, 21))),
    (20, (2024, 5, 21), Some((2026, 9, 24))),
    (21, (2024, 10, 2), Some((2027, 1, 21))),
    (22, (2025, 1, 21), Some((2027, 5, 20))),
    (23, (2025, 5, 29), Some((2027, 10, 8))),
    (24, (2025, 10, 8), Some((2028, 2, 18))),
    (25, (2026, 2, 18), Some((2028, 7, 29))),
    (26, (2026, 7, 29), None),
];

fn day((year, month, day): Ymd) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// `v23.0` → 23, `v2.8` → 2; `None` for what is no version (no `v`, letters, a `.1` Meta never
/// had since v3.0).
fn major(version: &str) -> Option<u32> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    let major: u32 = major.parse().ok()?;
    (major < 3 || minor == "0").then_some(major)
}

/// The version that answers a call made to `version` at `now`, or the error Meta gives.
pub fn answering_version(version: &str, now: DateTime<Utc>) -> Result<String, GraphError> {
    let unknown = || GraphError::unknown_path(&format!("/{version}/"));
    let asked = major(version).ok_or_else(unknown)?;
    let today = now.date_naive();
    let available: Vec<u32> = VERSIONS
        .iter()
        .filter(|(_, released, ended)| {
            day(*released) <= today && ended.is_none_or(|ended| today < day(ended))
        })
        .map(|(major, _, _)| *major)
        .collect();
    let (Some(&oldest), Some(&newest)) = (available.first(), available.last()) else {
        return Err(unknown());
    };
    if asked > newest {
        return Err(unknown());
    }
    Ok(format!("v{}.0", asked.max(oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(year: i32, month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, 12, 0, 0).unwrap()
    }

    #[test]
    fn an_available_version_answers_for_itself() {
        assert_eq!(
            answering_version("v23.0", at(2026, 11, 25)).unwrap(),
            "v23.0"
        );
        assert_eq!(
            answering_version("v26.0", at(2026, 11, 25)).unwrap(),
            "v26.0"
        );
    }

    #[test]
    fn a_retired_version_is_answered_as_the_oldest_available_one() {
        assert_eq!(
            answering_version("v20.0", at(2026, 11, 25)).unwrap(),
            "v21.0"
        );
        assert_eq!(
            answering_version("v21.0", at(2027, 1, 21)).unwrap(),
            "v22.0"
        );
        assert_eq!(
            answering_version("v2.8", at(2026, 11, 25)).unwrap(),
            "v21.0"
        );
        assert_eq!(
            answering_version("v3.0", at(2026, 11, 25)).unwrap(),
            "v21.0"
        );
    }

    #[test]
    fn an_unreleased_or_malformed_version_is_an_unknown_path() {
        for version in ["v27.0", "v99.0", "23.0", "vX.0", "v23.1", "latest"] {
            let error = answering_version(version, at(2026, 11, 25)).unwrap_err();
            assert_eq!(error.code, 2500, "{version}");
        }
        assert_eq!(
            answering_version("v26.0", at(2026, 7, 1)).unwrap_err().code,
            2500
        );
    }
}
