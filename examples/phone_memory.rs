//! What the phone number rules cost the daemon: the anonymous memory and CPU of the first number
//! (through `domain::phone`, as the daemon parses: its calling code's rules loaded, the parser's
//! patterns compiled), of parsing many numbers of one country, and of the first numbers of other
//! countries, each loading its code's rules (docs/performance.md, twenty-sixth and twenty-seventh
//! measurements).
//!
//! `cargo run --release --example phone_memory`. Each line is this process's `RssAnon` and its
//! CPU so far (`/proc/self`), under the daemon's allocator (jemalloc, one arena).

use sfwa::domain::phone::{region, E164};

// The daemon's allocator and settings (`src/main.rs`; a binary's own, so repeated here).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[export_name = "malloc_conf"]
pub static malloc_conf: &[u8] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Numbers of countries other than the first, one each (the UK, Germany, Brazil, India, France).
const ABROAD: [&str; 5] = [
    "+447911123456",
    "+4915112345678",
    "+5511912345678",
    "+919812345678",
    "+33612345678",
];

fn main() {
    let us = region("US").expect("US is a region");
    report("start");
    E164::parse("+16505551234", Some(us)).expect("a valid US number");
    report("the first number (+1): the rules loaded");
    for i in 0..20_000u32 {
        let number = format!("+1650555{:04}", i % 10_000);
        E164::parse(&number, Some(us)).expect("a valid US number");
    }
    report("20,000 more numbers of +1");
    // Valid or not, each is checked against its country's rules, which are then compiled.
    let valid = ABROAD
        .iter()
        .filter(|number| E164::parse(number, Some(us)).is_ok())
        .count();
    report(&format!(
        "one number each of five other countries ({valid} valid)"
    ));
}

fn report(when: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let anon_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    println!(
        "{when}: anonymous {:.1} MB, CPU {:.0} ms",
        anon_kb as f64 / 1024.0,
        cpu_ms()
    );
}

/// This process's user + system CPU so far (`/proc/self/stat`, clock ticks of 10 ms). The bench's
/// `procs::cpu_ms` reads the same, but lives in the `sfwa` binary, not the library.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}
