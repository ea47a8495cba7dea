//! What `/proc` says about one process for a person: `mosaic ps`, mosh's `mps`.

/// State, CPU share and memory of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    /// The state letter of `/proc/PID/stat` (R, S, D, T, t, Z, ...).
    pub state: char,
    /// CPU time over its lifetime, in percent of one CPU.
    pub cpu: f64,
    /// CPU time it used (this kernel's count), in seconds.
    pub cpu_s: f64,
    /// How long it has existed, in seconds.
    pub age_s: f64,
    /// Resident memory in KiB.
    pub mem_kb: u64,
    /// Start time in clock ticks after boot (with the PID, its identity).
    pub start: u64,
    /// Its parent's PID.
    pub ppid: i32,
    /// Its threads (a placeholder keeps its guest's).
    pub threads: u32,
}

/// Reads `/proc/PID/stat` and `status`; `None` if the process is gone.
pub fn stat(pid: i32) -> Option<ProcStat> {
    // Numbered as in proc(5): 3 is the state, 14 and 15 user and system
    // time, 22 the start time.
    let f = crate::procfs::stat_fields(pid).ok()?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let state = f.get(3)?.chars().next()?;
    let ppid = f.get(4)?.parse().ok()?;
    let threads = f.get(20).and_then(|v| v.parse().ok()).unwrap_or(1);
    let (utime, stime, start) = (num(14)?, num(15)?, num(22)?);
    // SAFETY: sysconf takes an integer and returns one.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let age_s = (uptime - start as f64 / hz).max(0.0);
    let alive = age_s.max(0.01);
    let cpu_s = (utime + stime) as f64 / hz;
    let cpu = (cpu_s / alive * 100.0).min(100.0 * 1024.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mem_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Some(ProcStat {
        state,
        cpu: (cpu * 10.0).round() / 10.0,
        cpu_s,
        age_s,
        mem_kb,
        start,
        ppid,
        threads,
    })
}

/// Its command line, as `ps` shows it ("" if it is gone).
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// A word for a state letter.
pub fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' | 'D' | 'I' => "sleeping",
        'T' => "stopped",
        // A guest is in a trace stop while home runs a call for it.
        't' => "in a call",
        'Z' | 'X' => "ended",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_stat_reads() {
        let me = stat(mosaic_proto::abi::my_pid()).expect("we exist");
        // (The main thread of a test binary waits for the test threads.)
        assert!(["running", "sleeping"].contains(&state_name(me.state)));
        assert!(me.mem_kb > 0);
        assert!(me.start > 0);
        assert!(stat(i32::MAX).is_none());
    }
}
