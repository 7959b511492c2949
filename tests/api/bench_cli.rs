//! `sfwa bench` as an operator runs it: the real binary starting the simulators and the daemon
//! as their own processes, a small backlog end to end, its `--json` read back.

use std::process::Command;

use serde_json::Value;

#[test]
fn sfwa_bench_backlog_sends_every_record_and_reports_its_figures_as_json() {
    // Arrange: 50 records, no Graph latency, short windows so the run takes seconds.
    let args = [
        "bench",
        "backlog",
        "--records",
        "50",
        "--latency-ms",
        "0",
        "--batch-window-ms",
        "50",
        "--flush-interval-ms",
        "300",
        "--timeout-s",
        "60",
        "--json",
    ];

    // Act
    let output = Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args(args)
        .output()
        .expect("sfwa runs");

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sfwa bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {stderr}"));
    assert_eq!(report["scenario"], "backlog");
    assert_eq!(report["params"]["records"], 50);
    let median = &report["this_build"]["median"];
    assert!(median["sends_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        median["cpu_ms_per_message"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(median["peak_rss_mb"].as_f64().unwrap() > 1.0, "{report}");
    let (peak, anonymous, file) = (
        median["peak_rss_mb"].as_f64().unwrap(),
        median["peak_anonymous_mb"].as_f64().unwrap(),
        median["file_backed_mb"].as_f64().unwrap(),
    );
    assert!(anonymous > 0.0 && file > 0.0, "{report}");
    assert!(
        anonymous + file <= peak + 2.0,
        "parts above the peak: {report}"
    );
    // Every record reached Read: the per-record integration would have made 5 calls for each.
    assert_eq!(median["per_record_calls_per_message"], 5.0, "{report}");
    let ours = median["sf_calls_per_message"].as_f64().unwrap();
    assert!(ours > 0.0 && ours < 5.0, "{report}");
    assert_eq!(median["rejected_130429"], 0.0, "{report}");
    assert_eq!(report["this_build"]["runs"].as_array().unwrap().len(), 1);
}
