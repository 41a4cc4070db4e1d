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
        Self::read(&dir, false)
    }

    /// The usage of the process whose /proc directory is `dir`; its CPU time includes that
    /// of its children it has waited for if `with_ended_children`.
    fn read(dir: &str, with_ended_children: bool) -> Option<Self> {
        let rss_kb = status_kb(dir, "VmRSS:")?;
        let fields = stat_fields(dir)?;
        // utime and stime are fields 14 and 15 of the whole line, 11 and 12 here; cutime
        // and cstime (the children waited for) are the two after them.
        let last = if with_ended_children { 14 } else { 12 };
        let ticks: u64 =
            (11..=last).map(|i| fields.get(i)?.parse::<u64>().ok()).sum::<Option<u64>>()?;
        Some(Self {
            rss_bytes: rss_kb * 1024,
            cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND),
        })
    }

    /// The sum of `usages`; `None` if there are none or one cannot be read.
    pub fn sum(usages: impl IntoIterator<Item = Option<Self>>) -> Option<Self> {
        let mut total: Option<Self> = None;
        for usage in usages {
            let usage = usage?;
            let sum = total.get_or_insert_with(Self::default);
            sum.rss_bytes += usage.rss_bytes;
            sum.cpu += usage.cpu;
        }
        total
    }

    /// `pid` and every process descended from it (PostgreSQL's backends are the
    /// postmaster's children), each with the CPU time of its children that have ended, so
    /// that a backend or worker that exits between two readings still counts (in its
    /// parent's share); `None` if `pid` cannot be read.
    pub fn of_tree(pid: u32) -> Option<Self> {
        let mut parents: Vec<(u32, u32)> = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let fields = stat_fields(&format!("/proc/{child}"));
            if let Some(parent) = fields.and_then(|fields| fields.get(1)?.parse().ok()) {
                parents.push((child, parent));
            }
        }
        let mut family = vec![pid];
        let mut index = 0;
        while let Some(&ancestor) = family.get(index) {
            family.extend(parents.iter().filter(|(_, p)| *p == ancestor).map(|(c, _)| *c));
            index += 1;
        }
        let read = |pid: u32| Self::read(&format!("/proc/{pid}"), true);
        let root = read(pid)?;
        Self::sum(
            std::iter::once(Some(root))
                .chain(family[1..].iter().filter_map(|&c| read(c)).map(Some)),
        )
    }
}

/// The fields of `dir`/stat after the command name (field 3 of the line onwards).
fn stat_fields(dir: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect())
}

/// A process's peak resident set since it started (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    Some(status_kb(&format!("/proc/{pid}"), "VmHWM:")? * 1024)
}

/// A figure in kB from the `status` file of the process directory `dir`, by its label.
fn status_kb(dir: &str, label: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(label))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
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

    /// A shell waiting on a `sleep`: both idle, so their memory holds still while read
    /// (this test process's own moves as other tests run beside it).
    #[test]
    fn a_tree_counts_its_children() {
        use std::os::unix::process::CommandExt;
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30; true"])
            .process_group(0)
            .spawn()
            .expect("sh");
        let pid = shell.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let counted = loop {
            let alone = Usage::of(Some(pid)).expect("the shell");
            let tree = Usage::of_tree(pid).expect("the shell and its sleep");
            if tree.rss_bytes > alone.rss_bytes || std::time::Instant::now() > deadline {
                break tree.rss_bytes > alone.rss_bytes;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .status();
        shell.wait().expect("reaped");
        assert!(counted, "the child's memory is added");
    }
}
