//! The memory a run may use: the in-memory/out-of-core choice is made from it.

/// Peak memory of an in-memory run per byte of CSV text, rounded up from the
/// benchmarks' worst shape (few users with long histories: 4.4 GB for 878 MB; many
/// short histories take about 3).
pub const PEAK_PER_TEXT_BYTE: u64 = 5;

/// Assumed when the machine's memory cannot be read (not Linux).
const FALLBACK_BYTES: u64 = 8 << 30;

/// The memory limit in bytes: `limit_mb` when given, else half of what the
/// machine (or its container) has.
pub fn limit_bytes(limit_mb: Option<u64>) -> u64 {
    match limit_mb {
        Some(mb) => mb.saturating_mul(1 << 20),
        None => available_bytes().unwrap_or(FALLBACK_BYTES) / 2,
    }
}

/// The machine's memory, or the container's cgroup limit when it is lower.
fn available_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| text.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_and_prefers_an_explicit_limit() {
        let meminfo = "MemTotal:       24579588 kB\nMemFree:        1 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_579_588 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(limit_bytes(Some(512)), 512 << 20);
        let default = limit_bytes(None);
        assert!(default > 0 && default <= available_bytes().unwrap_or(FALLBACK_BYTES));
    }
}
