//! The processes of a bench run, and what the kernel says about them: CPU time from
//! `/proc/<pid>/stat` (user + system, in clock ticks) and peak RSS from `/proc/<pid>/status`
//! (`VmHWM`). Reading `/proc` costs the measured process nothing.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// A free loopback port: bound, read and released (another socket can be given it in between:
/// `Env::start` starts again when the daemon finds it taken).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces or `)`, so fields are counted after the
/// last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` (peak resident set) of a `/proc/<pid>/status`, in kB.
pub fn peak_rss_kb(status: &str) -> Option<u64> {
    status_kb(status, "VmHWM:")
}

/// The kB figure of the line that starts with `name` in a `/proc/<pid>/status`.
fn status_kb(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `RssAnon` and `RssFile` (the resident pages of the heap, stacks and other private memory;
/// of the mapped files: the binary's own code and libraries) of a `/proc/<pid>/status`, in kB.
pub fn rss_parts_kb(status: &str) -> Option<(u64, u64)> {
    Some((
        status_kb(status, "RssAnon:")?,
        status_kb(status, "RssFile:")?,
    ))
}

/// How often [`MemorySampler`] reads the daemon's resident memory.
pub const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Reads a process's resident memory every [`MEMORY_SAMPLE_EVERY`] while a run lasts: `VmHWM`
/// says how high it went, not of what, and the peak's anonymous part (what sfwa allocates)
/// moves with the work while the file-backed part (its binary's pages, shared with any other
/// process running the same file) does not.
pub struct MemorySampler {
    pid: u32,
    peak_anon_kb: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What a [`MemorySampler`] saw, in MB.
#[derive(Clone, Copy, Debug)]
pub struct MemoryParts {
    /// `VmHWM`: the peak resident set, both parts together.
    pub peak_rss_mb: f64,
    /// The highest `RssAnon` sampled.
    pub peak_anonymous_mb: f64,
    /// `RssFile` at the end.
    pub file_backed_mb: f64,
}

impl MemorySampler {
    pub fn start(pid: u32) -> MemorySampler {
        let peak_anon_kb = Arc::new(AtomicU64::new(0));
        let peak = Arc::clone(&peak_anon_kb);
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(MEMORY_SAMPLE_EVERY);
            loop {
                every.tick().await;
                if let Some((anon, _)) = read_status(pid).as_deref().and_then(rss_parts_kb) {
                    peak.fetch_max(anon, Ordering::Relaxed);
                }
            }
        });
        MemorySampler {
            pid,
            peak_anon_kb,
            task,
        }
    }

    /// The highest anonymous memory sampled so far, in kB (0 before the first sample).
    pub fn peak_anonymous_kb(&self) -> u64 {
        self.peak_anon_kb.load(Ordering::Relaxed)
    }

    /// Stops sampling; one last sample is taken now, with the peak of the whole process.
    pub fn finish(self) -> anyhow::Result<MemoryParts> {
        self.task.abort();
        let pid = self.pid;
        let status = read_status(pid).with_context(|| format!("reading /proc/{pid}/status"))?;
        let (anon, file) = rss_parts_kb(&status)
            .with_context(|| format!("no RssAnon / RssFile in /proc/{pid}/status"))?;
        let hwm =
            peak_rss_kb(&status).with_context(|| format!("no VmHWM in /proc/{pid}/status"))?;
        let peak_anon = self.peak_anonymous_kb().max(anon);
        Ok(MemoryParts {
            peak_rss_mb: hwm as f64 / 1024.0,
            peak_anonymous_mb: peak_anon as f64 / 1024.0,
            file_backed_mb: file as f64 / 1024.0,
        })
    }
}

fn read_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 on Linux in practice).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the running kernel; no memory is passed.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// CPU milliseconds `pid` has used so far (user + system, all threads).
pub fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = cpu_ticks(&stat).context("unreadable /proc/<pid>/stat")?;
    Ok(ticks as f64 * 1000.0 / ticks_per_second() as f64)
}

/// `cpu_ms` of CPU time used over `seconds` of wall time, as a share of one core in % (100 = one
/// core busy the whole time; a process on two busy cores shows 200).
pub fn percent_of_one_core(cpu_ms: f64, seconds: f64) -> f64 {
    cpu_ms / seconds / 10.0
}

/// The whole machine's CPU time from the first (`cpu `) line of `/proc/stat`, in clock ticks:
/// `(busy, total)`, where busy is everything but `idle` and `iowait` (user, nice, system, irq,
/// softirq, steal). `guest` time is already counted in `user`, so only the first eight fields
/// count.
pub fn machine_ticks(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// The machine's CPU counters now (`/proc/stat`), to take a busy share between two readings
/// with [`busy_percent`].
pub fn machine_cpu() -> Option<(u64, u64)> {
    machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// How busy all the machine's cores were between two [`machine_cpu`] readings, 0–100 % (100 =
/// every core busy the whole time); NaN when either reading is missing or no time passed.
pub fn busy_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> f64 {
    match (before, after) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            busy1.saturating_sub(busy0) as f64 * 100.0 / (total1 - total0) as f64
        }
        _ => f64::NAN,
    }
}

/// Peak RSS of `pid` so far, in MB.
pub fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb = peak_rss_kb(&status).context("no VmHWM in /proc/<pid>/status")?;
    Ok(kb as f64 / 1024.0)
}

/// A child process that is stopped (SIGTERM, then SIGKILL after a grace) when dropped.
pub struct Process {
    child: tokio::process::Child,
    pub pid: u32,
    pub name: &'static str,
}

impl Process {
    /// Starts `program args…` with stdout piped (read with [`Process::first_line`]) and stderr
    /// appended to `log`.
    pub fn start(
        name: &'static str,
        program: &Path,
        args: &[&std::ffi::OsStr],
        log: &Path,
    ) -> anyhow::Result<Process> {
        let log = std::fs::File::create(log)?;
        let child = tokio::process::Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Process { child, pid, name })
    }

    /// The first line the process prints on stdout (within `limit`).
    pub async fn first_line(&mut self, limit: Duration) -> anyhow::Result<String> {
        use tokio::io::AsyncBufReadExt;
        let stdout = self.child.stdout.take().context("stdout already taken")?;
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        tokio::time::timeout(limit, reader.read_line(&mut line))
            .await
            .with_context(|| format!("{} printed nothing within {limit:?}", self.name))??;
        Ok(line)
    }

    /// The whole stdout until the process exits (within `limit`), and whether it exited with 0.
    pub async fn output(mut self, limit: Duration) -> anyhow::Result<(String, bool)> {
        use tokio::io::AsyncReadExt;
        let mut stdout = self.child.stdout.take().context("stdout already taken")?;
        let mut text = String::new();
        let read = async {
            stdout.read_to_string(&mut text).await?;
            self.child.wait().await
        };
        let status = tokio::time::timeout(limit, read)
            .await
            .with_context(|| format!("{} did not finish within {limit:?}", self.name))??;
        Ok((text, status.success()))
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill(2) with our own child's pid and a signal number; no memory involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_ticks_even_with_a_parenthesis_in_the_name() {
        // Arrange: a real line's shape; the name holds ") (" to trip a naive split.
        let stat = "4242 (sfwa) (x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    731 269 0 0 20 0 9 0 12345 123456789 2048 18446744073709551615";

        // Act
        let ticks = cpu_ticks(stat);

        // Assert
        assert_eq!(ticks, Some(731 + 269));
    }

    #[test]
    fn a_truncated_stat_line_gives_no_cpu_time() {
        assert_eq!(cpu_ticks("4242 (sfwa) S 1 2 3"), None);
    }

    #[test]
    fn the_anonymous_and_file_backed_parts_of_the_resident_set_are_read_in_kilobytes() {
        let status = "Name:\tsfwa\nVmHWM:\t   53248 kB\nVmRSS:\t   41000 kB\nRssAnon:\t   21000 kB\nRssFile:\t   19800 kB\nRssShmem:\t     200 kB\n";

        assert_eq!(rss_parts_kb(status), Some((21000, 19800)));
        assert_eq!(rss_parts_kb("Name:\tsfwa\nRssAnon:\t1 kB\n"), None);
    }

    #[tokio::test]
    async fn the_memory_sampler_reports_this_process_resident_memory_by_part() {
        let sampler = MemorySampler::start(std::process::id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while sampler.peak_anonymous_kb() == 0 {
            assert!(Instant::now() < deadline, "no sample within 10 s");
            tokio::time::sleep(MEMORY_SAMPLE_EVERY).await;
        }

        let parts = sampler.finish().unwrap();

        assert!(parts.peak_anonymous_mb > 0.1, "{parts:?}");
        assert!(parts.file_backed_mb > 0.1, "{parts:?}");
        assert!(parts.peak_rss_mb >= parts.file_backed_mb, "{parts:?}");
    }

    #[test]
    fn peak_rss_is_read_from_vm_hwm_in_kilobytes() {
        // Arrange
        let status =
            "Name:\tsfwa\nVmPeak:\t  900000 kB\nVmHWM:\t   53248 kB\nVmRSS:\t   41000 kB\n";

        // Act
        let kb = peak_rss_kb(status);

        // Assert
        assert_eq!(kb, Some(53_248));
    }

    #[test]
    fn cpu_milliseconds_over_wall_seconds_read_as_percent_of_one_core() {
        assert!((percent_of_one_core(1_500.0, 1.0) - 150.0).abs() < 1e-9);
        assert!((percent_of_one_core(250.0, 2.0) - 12.5).abs() < 1e-9);
    }

    #[test]
    fn machine_cpu_counts_everything_but_idle_and_iowait_as_busy() {
        let stat = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1 2 3\n";
        // busy = user + nice + system + irq + softirq + steal; guest (7) is inside user already.
        assert_eq!(machine_ticks(stat), Some((160, 1000)));
    }

    #[test]
    fn a_proc_stat_without_a_whole_cpu_line_gives_no_machine_cpu() {
        assert_eq!(machine_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks("cpu  1 2 3\n"), None);
        assert_eq!(machine_ticks("cpu  1 2 x 4 5 6 7 8\n"), None);
    }

    #[test]
    fn the_busy_share_is_the_busy_ticks_over_all_ticks_between_two_readings() {
        let share = busy_percent(Some((100, 1000)), Some((250, 1200)));
        assert!((share - 75.0).abs() < 1e-9, "{share}");
        assert!(busy_percent(Some((100, 1000)), Some((100, 1000))).is_nan());
        assert!(busy_percent(None, Some((1, 2))).is_nan());
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let pid = std::process::id();
        assert!(cpu_ms(pid).unwrap() >= 0.0);
        assert!(peak_rss_mb(pid).unwrap() > 1.0);
    }
}
