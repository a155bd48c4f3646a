//! The server's own figures, read from `/proc/<pid>`: CPU time (user plus
//! system, every thread) from `stat`, resident memory from `status`. The
//! nodes of a cluster are read as one [`Group`]: their figures add up.
//!
//! CPU time in `stat` is in clock ticks; Linux reports them at `USER_HZ`,
//! which is 100 on every architecture Linux ships today, so a figure is
//! precise to 10 ms. Runs last seconds, which keeps that under one percent.

use std::path::PathBuf;

/// Clock ticks per second in `/proc/<pid>/stat` (Linux `USER_HZ`).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// A process to watch.
#[derive(Clone, Copy, Debug)]
pub struct Process {
    pub pid: u32,
}

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl Process {
    /// This process (the load generator itself).
    pub fn current() -> Process {
        Process {
            pid: std::process::id(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }

    /// Reads CPU time and RSS now; `None` when the process is gone or this
    /// is not Linux.
    pub fn sample(&self) -> Option<Sample> {
        let stat = std::fs::read_to_string(self.path("stat")).ok()?;
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        Some(Sample {
            cpu_seconds: parse_cpu_seconds(&stat)?,
            rss_kib: parse_rss_kib(&status)?,
        })
    }
}

/// Several processes read as one: the nodes of a cluster.
#[derive(Clone, Debug)]
pub struct Group {
    pub members: Vec<Process>,
}

impl Group {
    /// The processes `pids`; `None` when there are none.
    pub fn of(pids: &[u32]) -> Option<Group> {
        (!pids.is_empty()).then(|| Group {
            members: pids.iter().map(|&pid| Process { pid }).collect(),
        })
    }

    /// The sum of every member's reading; `None` when any is gone.
    pub fn sample(&self) -> Option<Sample> {
        self.members
            .iter()
            .try_fold(Sample::default(), |total, process| {
                let sample = process.sample()?;
                Some(Sample {
                    cpu_seconds: total.cpu_seconds + sample.cpu_seconds,
                    rss_kib: total.rss_kib + sample.rss_kib,
                })
            })
    }
}

/// Fields 14 (`utime`) and 15 (`stime`) of `/proc/<pid>/stat`, counted after
/// the command name, which is in parentheses and may hold spaces.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is the 12th of
    // those, stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// The `VmRSS:` line of `/proc/<pid>/status`, in KiB.
fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        let status = "Name:\tcharla\nVmPeak:\t  1000 kB\nVmRSS:\t   5120 kB\n";
        assert_eq!(parse_rss_kib(status), Some(5120));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = Process {
            pid: std::process::id(),
        };
        let sample = me.sample().expect("a Linux /proc");
        assert!(sample.rss_kib > 0);
    }

    #[test]
    fn a_group_adds_its_members_up() {
        let me = std::process::id();
        assert!(Group::of(&[]).is_none());
        let one = Group::of(&[me]).unwrap().sample().unwrap();
        let twice = Group::of(&[me, me]).unwrap().sample().unwrap();
        assert!(twice.rss_kib > one.rss_kib);
        assert!(twice.cpu_seconds >= 2.0 * one.cpu_seconds);
    }
}
