//! The Graph API versions Meta has published, and what a configured `whatsapp.api_version` is worth
//! on a given day: fine, ending within [`WARN_AHEAD_DAYS`], ended, or not one Meta has announced.
//!
//! Used by `sfwa doctor` (the "Graph API version" check) and by the daemon's start-up warning, both
//! through the pure [`assess`], so the decision is tested on dates rather than on today.
//!
//! The dates are Meta's changelog (developers.facebook.com/docs/graph-api/changelog/versions, as of
//! late 2026). A version whose end Meta has not published yet has `ends: None` and is never
//! guessed: Meta keeps each version at least two years, and ends it two years after the one after
//! it is released, so a date appears only once the next version is out. When Meta retires a
//! version it does not refuse calls to it: it answers them as the oldest version still available
//! (the `facebook-api-version` response header says which), so nothing breaks loudly on the day —
//! behaviour simply changes. That is why the warning comes early.

use chrono::NaiveDate;

/// The version sfwa uses when `whatsapp.api_version` is not set: the newest one whose end Meta has
/// published (29 July 2028), so the warning below can vouch for it. v26.0 is newer but has no end
/// date yet; nothing sfwa sends or reads differs between the two.
pub const DEFAULT_VERSION: &str = "v25.0";

/// How long before a version's end `sfwa doctor` and the start-up log warn.
pub const WARN_AHEAD_DAYS: i64 = 90;

/// One row of Meta's version table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphVersion {
    pub version: &'static str,
    pub released: NaiveDate,
    /// `None`: Meta has not published it yet ("TBD").
    pub ends: Option<NaiveDate>,
}

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a calendar date"),
    }
}

const fn row(version: &'static str, released: NaiveDate, ends: Option<NaiveDate>) -> GraphVersion {
    GraphVersion {
        version,
        released,
        ends,
    }
}

/// Newest first. Keep in step with Meta's changelog; add a version when it is released and its
/// predecessor's end date when Meta publishes it.
pub const KNOWN_VERSIONS: &[GraphVersion] = &[
    row("v26.0", date(2026, 7, 29), None),
    row("v25.0", date(2026, 2, 18), Some(date(2028, 7, 29))),
    row("v24.0", date(2025, 10, 8), Some(date(2028, 2, 18))),
    row("v23.0", date(2025, 5, 29), Some(date(2027, 10, 8))),
    row("v22.0", date(2025, 1, 21), Some(date(2027, 5, 20))),
    row("v21.0", date(2024, 10, 2), Some(date(2027, 1, 21))),
    row("v20.0", date(2024, 5, 21), Some(date(2026, 9, 24))),
    row("v19.0", date(2024, 1, 23), Some(date(2026, 5, 21))),
    row("v18.0", date(2023, 9, 12), Some(date(2026, 1, 26))),
    row("v17.0", date(2023, 5, 23), Some(date(2025, 9, 12))),
];

/// The newest version in the table: what the fixes tell people to move to.
pub fn newest_known() -> &'static str {
    KNOWN_VERSIONS[0].version
}

/// The table row for `version` (`v23.0`; `v23` and `23.0` are read the same).
pub fn find(version: &str) -> Option<&'static GraphVersion> {
    let wanted = normalise(version)?;
    KNOWN_VERSIONS
        .iter()
        .find(|row| normalise(row.version) == Some(wanted))
}

/// `(major, minor)` of `v23.0`, `v23` or `23.0`.
fn normalise(version: &str) -> Option<(u32, u32)> {
    let number = version.trim().trim_start_matches('v');
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// What `version` is worth on `today`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionState {
    /// Supported, and its end (if published) is more than [`WARN_AHEAD_DAYS`] away.
    Current { ends: Option<NaiveDate> },
    /// Ends within [`WARN_AHEAD_DAYS`] (on `ends`, `days_left` days from today).
    EndingSoon { ends: NaiveDate, days_left: i64 },
    /// Ended on `ended`: Meta answers its calls as a newer version.
    Ended { ended: NaiveDate },
    /// Not in the table: newer than this build knows, or a version Meta never had.
    Unknown,
}

/// The decision for `version` on `today`; pure.
pub fn assess(version: &str, today: NaiveDate) -> VersionState {
    let Some(row) = find(version) else {
        return VersionState::Unknown;
    };
    match row.ends {
        Some(ends) if today >= ends => VersionState::Ended { ended: ends },
        Some(ends) if (ends - today).num_days() <= WARN_AHEAD_DAYS => VersionState::EndingSoon {
            ends,
            days_left: (ends - today).num_days(),
        },
        ends => VersionState::Current { ends },
    }
}

/// The fix, in words, for a version that is ending or ended.
pub fn upgrade_fix() -> String {
    format!(
        "set whatsapp.api_version = \"{}\" after checking Meta's changelog \
         (developers.facebook.com/docs/graph-api/changelog) for changes between the two versions",
        newest_known()
    )
}

/// The line the daemon logs at start-up, if any: only for a version ending soon or ended.
pub fn startup_warning(version: &str, today: NaiveDate) -> Option<String> {
    match assess(version, today) {
        VersionState::EndingSoon { ends, days_left } => Some(format!(
            "whatsapp.api_version {version} ends on {ends} ({days_left} days from now); {}",
            upgrade_fix()
        )),
        VersionState::Ended { ended } => Some(format!(
            "whatsapp.api_version {version} ended on {ended}: Meta answers its calls as a newer \
             version, whose behaviour may differ; {}",
            upgrade_fix()
        )),
        VersionState::Current { .. } | VersionState::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_newest_first_and_each_end_is_after_its_release() {
        for pair in KNOWN_VERSIONS.windows(2) {
            assert!(pair[0].released > pair[1].released, "{pair:?}");
        }
        for row in KNOWN_VERSIONS {
            assert!(row.ends.is_none_or(|ends| ends > row.released), "{row:?}");
        }
    }

    #[test]
    fn the_default_version_is_known_and_far_from_its_end_at_release_time() {
        let row = find(DEFAULT_VERSION).expect("the default is in the table");
        assert!(row.ends.is_some(), "the default has a published end date");
        assert_eq!(
            assess(DEFAULT_VERSION, date(2026, 11, 25)),
            VersionState::Current {
                ends: Some(date(2028, 7, 29))
            }
        );
    }

    #[test]
    fn a_version_is_current_until_ninety_days_before_its_end() {
        // v21.0 ends on 2027-01-21; 91 days before is 2026-10-22.
        assert_eq!(
            assess("v21.0", date(2026, 10, 22)),
            VersionState::Current {
                ends: Some(date(2027, 1, 21))
            }
        );
        assert_eq!(
            assess("v21.0", date(2026, 10, 23)),
            VersionState::EndingSoon {
                ends: date(2027, 1, 21),
                days_left: 90
            }
        );
    }

    #[test]
    fn a_version_has_ended_from_its_end_date_on() {
        assert_eq!(
            assess("v21.0", date(2027, 1, 20)),
            VersionState::EndingSoon {
                ends: date(2027, 1, 21),
                days_left: 1
            }
        );
        assert_eq!(
            assess("v21.0", date(2027, 1, 21)),
            VersionState::Ended {
                ended: date(2027, 1, 21)
            }
        );
        assert_eq!(
            assess("v20.0", date(2026, 11, 25)),
            VersionState::Ended {
                ended: date(2026, 9, 24)
            }
        );
    }

    #[test]
    fn a_version_without_a_published_end_is_current_and_an_unlisted_one_unknown() {
        assert_eq!(
            assess("v26.0", date(2030, 1, 1)),
            VersionState::Current { ends: None }
        );
        assert_eq!(assess("v99.0", date(2026, 11, 25)), VersionState::Unknown);
        assert_eq!(assess("latest", date(2026, 11, 25)), VersionState::Unknown);
    }

    #[test]
    fn versions_are_read_with_or_without_the_v_and_the_minor() {
        assert_eq!(find("v23").map(|r| r.version), Some("v23.0"));
        assert_eq!(find("23.0").map(|r| r.version), Some("v23.0"));
        assert_eq!(find("v23.1"), None);
    }

    #[test]
    fn the_start_up_warning_is_logged_only_near_or_past_the_end_and_names_the_fix() {
        assert_eq!(startup_warning("v25.0", date(2026, 11, 25)), None);
        assert_eq!(startup_warning("v99.0", date(2026, 11, 25)), None);
        let soon = startup_warning("v21.0", date(2026, 12, 1)).expect("a warning");
        assert!(soon.contains("ends on 2027-01-21 (51 days"), "{soon}");
        assert!(soon.contains("whatsapp.api_version = \"v26.0\""), "{soon}");
        let ended = startup_warning("v20.0", date(2026, 12, 1)).expect("a warning");
        assert!(ended.contains("ended on 2026-09-24"), "{ended}");
    }
}
