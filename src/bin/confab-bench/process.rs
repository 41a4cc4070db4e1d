//! What a process costs, read from /proc: resident memory and CPU time.

use std::time::Duration;

/// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every platform it runs
/// on today.
const TICKS_PER_SECOND: u64 = 100;

/// A process's resident set and CPU time at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_bytes: u64,
    pub cpu: Duration,
}

impl Usage {
    /// `pid`, or this process for `None`; `None` if it cannot be read (not Linux, gone).
    pub fn of(pid: Option<u32>) -> Option<Self> {
        let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // The command name (field 2) may hold spaces; the fields after it are plain.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Self {
            rss_bytes: rss_kb * 1024,
            cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND),
        })
    }
}

/// CPU time spent between two readings, as a share of one core over `wall`.
pub fn cpu_share(before: Option<Usage>, after: Option<Usage>, wall: Duration) -> Option<f64> {
    let spent = after?.cpu.checked_sub(before?.cpu)?;
    Some(spent.as_secs_f64() / wall.as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_read() {
        let usage = Usage::of(None).expect("Linux /proc");
        assert!(usage.rss_bytes > 0);
    }
}
