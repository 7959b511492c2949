//! What a bench run reports: named figures per run, their medians over `--runs`, ratios against
//! a baseline build, as a table for people or one JSON object for machines.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{Common, Scenario};

/// One measured quantity of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Stable name in the JSON (`sends_per_s`).
    pub key: &'static str,
    /// What the table says (`sends/s`).
    pub label: &'static str,
    pub value: f64,
    /// Whether `--baseline` prints new/old for it (sends/s, CPU per message, webhooks/s).
    pub compared: bool,
}

/// The figures of one run, in the order the table shows them.
pub type Run = Vec<Figure>;

/// A figure without a baseline ratio.
pub fn figure(key: &'static str, label: &'static str, value: f64) -> Figure {
    Figure {
        key,
        label,
        value,
        compared: false,
    }
}

/// A figure `--baseline` compares.
pub fn compared(key: &'static str, label: &'static str, value: f64) -> Figure {
    Figure {
        key,
        label,
        value,
        compared: true,
    }
}

/// The runs of one binary.
pub struct Runs {
    pub label: String,
    pub binary: String,
    pub runs: Vec<Run>,
}

/// Runs the scenario `common.runs` times with `daemon` (simulators from `sim`).
pub async fn repeat(
    scenario: &Scenario,
    common: &Common,
    sim: &Path,
    daemon: &Path,
    label: &str,
) -> anyhow::Result<Runs> {
    let mut runs = Vec::new();
    for index in 0..common.runs.max(1) {
        eprintln!(
            "bench: {} run {} of {} ({label})",
            scenario.name(),
            index + 1,
            common.runs.max(1)
        );
        let mut run = scenario.run_once(common, sim, daemon).await?;
        // Other work on the machine slows every figure: say how busy it was.
        if let Some(load) = load_average() {
            run.push(figure(
                "load_average_1m",
                "machine load average (1 min)",
                load,
            ));
        }
        runs.push(run);
    }
    Ok(Runs {
        label: label.to_string(),
        binary: daemon.display().to_string(),
        runs,
    })
}

/// The 1-minute load average (`/proc/loadavg`), when readable.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// The `q`-quantile (0.0–1.0) of sorted `values`, nearest rank; NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Per key (in the first run's order), the median over the runs.
pub fn medians(runs: &[Run]) -> Run {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|f| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.iter().find(|g| g.key == f.key))
                .map(|g| g.value)
                .collect();
            Figure {
                value: median(&values),
                ..f.clone()
            }
        })
        .collect()
}

/// new / old for each compared figure both sides have.
pub fn ratios(new: &Run, old: &Run) -> Vec<(&'static str, f64)> {
    new.iter()
        .filter(|f| f.compared)
        .filter_map(|f| {
            let base = old.iter().find(|g| g.key == f.key)?.value;
            Some((f.key, f.value / base))
        })
        .collect()
}

/// Everything one invocation measured.
pub struct Summary {
    name: &'static str,
    params: Value,
    ours: Runs,
    theirs: Option<Runs>,
}

impl Summary {
    pub fn new(scenario: &Scenario, ours: Runs, theirs: Option<Runs>) -> Summary {
        Summary {
            name: scenario.name(),
            params: scenario.params(),
            ours,
            theirs,
        }
    }

    pub fn to_json(&self) -> Value {
        let side = |runs: &Runs| {
            json!({
                "label": runs.label,
                "binary": runs.binary,
                "runs": runs.runs.iter().map(as_object).collect::<Vec<_>>(),
                "median": as_object(&medians(&runs.runs)),
            })
        };
        let mut out = json!({
            "scenario": self.name,
            "params": self.params,
            "this_build": side(&self.ours),
        });
        if let Some(theirs) = &self.theirs {
            out["baseline"] = side(theirs);
            let pairs = ratios(&medians(&self.ours.runs), &medians(&theirs.runs));
            out["ratios_new_over_old"] = Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), number(v)))
                    .collect(),
            );
        }
        out
    }

    /// The table: one line per figure, this build's median, the baseline's and new/old.
    pub fn table(&self) -> String {
        let ours = medians(&self.ours.runs);
        let theirs = self.theirs.as_ref().map(|t| medians(&t.runs));
        let params = self
            .params
            .as_object()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mut out = format!(
            "sfwa bench {} {params}  (median of {} run(s))\n",
            self.name,
            self.ours.runs.len()
        );
        let base_label = self
            .theirs
            .as_ref()
            .map_or(String::new(), |t| t.label.clone());
        let header = format!(
            "{:<44} {:>14} {:>18} {:>9}",
            "figure",
            "this build",
            base_label,
            if theirs.is_some() { "new/old" } else { "" }
        );
        out.push_str(header.trim_end());
        out.push('\n');
        for f in &ours {
            let old = theirs
                .as_ref()
                .and_then(|t| t.iter().find(|g| g.key == f.key));
            let old_text = old.map_or(String::new(), |g| show(g.value));
            let ratio = match old {
                Some(g) if f.compared => format!("{:.2}×", f.value / g.value),
                _ => String::new(),
            };
            let line = format!(
                "{:<44} {:>14} {:>18} {:>9}",
                f.label,
                show(f.value),
                old_text,
                ratio
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A run's figures as `{key: value}`.
fn as_object(run: &Run) -> Value {
    Value::Object(
        run.iter()
            .map(|f| (f.key.to_string(), number(f.value)))
            .collect::<Map<_, _>>(),
    )
}

/// A JSON number rounded to 4 decimals; null when not finite.
fn number(value: f64) -> Value {
    if value.is_finite() {
        json!((value * 10_000.0).round() / 10_000.0)
    } else {
        Value::Null
    }
}

/// A figure for the table: more decimals for small values.
fn show(value: f64) -> String {
    match value.abs() {
        v if !v.is_finite() => "–".to_string(),
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 1.0 => format!("{value:.2}"),
        _ => format!("{value:.4}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value_and_of_an_even_count_the_mean_of_the_middle_two(
    ) {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
        assert_eq!(quantile(&sorted[..1], 0.99), 1.0);
    }

    #[test]
    fn medians_are_taken_per_figure_across_runs() {
        // Arrange
        let run = |sends: f64, rss: f64| {
            vec![
                compared("sends_per_s", "sends/s", sends),
                figure("peak_rss_mb", "RSS", rss),
            ]
        };
        let runs = vec![run(900.0, 40.0), run(1000.0, 60.0), run(950.0, 50.0)];

        // Act
        let middle = medians(&runs);

        // Assert
        assert_eq!(middle[0].value, 950.0);
        assert_eq!(middle[1].value, 50.0);
    }

    #[test]
    fn ratios_are_new_over_old_for_compared_figures_only() {
        // Arrange
        let new = vec![
            compared("sends_per_s", "sends/s", 950.0),
            figure("peak_rss_mb", "RSS", 50.0),
        ];
        let old = vec![
            compared("sends_per_s", "sends/s", 76.0),
            figure("peak_rss_mb", "RSS", 52.0),
        ];

        // Act
        let pairs = ratios(&new, &old);

        // Assert
        assert_eq!(pairs, vec![("sends_per_s", 12.5)]);
    }

    #[test]
    fn the_table_shows_both_builds_and_the_ratio() {
        // Arrange
        let runs = |label: &str, sends: f64| Runs {
            label: label.into(),
            binary: "sfwa".into(),
            runs: vec![vec![compared("sends_per_s", "sends/s", sends)]],
        };
        let summary = Summary {
            name: "backlog",
            params: json!({"records": 3000}),
            ours: runs("this build", 950.0),
            theirs: Some(runs("baseline a387cbc", 76.0)),
        };

        // Act
        let table = summary.table();
        let json = summary.to_json();

        // Assert
        assert!(table.contains("sfwa bench backlog records=3000"), "{table}");
        assert!(
            table.contains("950") && table.contains("76.00") && table.contains("12.50×"),
            "{table}"
        );
        assert_eq!(json["ratios_new_over_old"]["sends_per_s"], 12.5);
        assert_eq!(json["baseline"]["median"]["sends_per_s"], 76.0);
    }
}
