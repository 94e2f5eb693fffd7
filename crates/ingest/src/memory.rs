//! The memory a run may use: the in-memory/out-of-core choice is made from it.

use std::path::Path;

/// Peak memory of an in-memory run per byte of CSV text, rounded up from the
/// benchmarks' worst shape (docs/benchmarks.md).
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

/// The machine's memory, or the process's cgroup limit when it is lower.
fn available_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|own| {
            cgroup_limit(&own, Path::new("/sys/fs/cgroup"), &|file| {
                std::fs::read_to_string(file).ok()
            })
        });
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The tightest memory limit of the cgroup `own` (/proc/self/cgroup's text) names
/// and of its ancestors, under the cgroup mount `root`: v2's `memory.max`, v1's
/// `memory/…/memory.limit_in_bytes` (`max`, no limit, reads as none).
fn cgroup_limit(own: &str, root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Option<u64> {
    let mut limits = Vec::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // A cgroup outside this namespace's root (`/../x`) is not under the mount.
        if path.split('/').any(|part| part == "..") {
            continue;
        }
        let (base, file) = match controllers {
            "" => (root.to_path_buf(), "memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                (root.join("memory"), "memory.limit_in_bytes")
            }
            _ => continue,
        };
        let mut dir = base.join(path.trim_start_matches('/'));
        loop {
            let limit = read(&dir.join(file)).and_then(|text| text.trim().parse::<u64>().ok());
            limits.extend(limit);
            if dir == base || !dir.pop() {
                break;
            }
        }
    }
    limits.into_iter().min()
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
        // Half the machine's (or its cgroup's) memory.
        let default = limit_bytes(None);
        assert_eq!(default, available_bytes().unwrap_or(FALLBACK_BYTES) / 2);
        assert!(default > 0);
    }

    #[test]
    fn the_own_cgroup_and_its_ancestors_limit_the_memory() {
        let files = |path: &Path| -> Option<String> {
            let limit = match path.to_str()? {
                "/cg/memory.max" => "max",
                "/cg/system.slice/memory.max" => "3221225472",
                "/cg/system.slice/job.scope/memory.max" => "838860800\n",
                "/cg/memory/docker/memory.limit_in_bytes" => "1073741824",
                "/cg/memory/memory.limit_in_bytes" => "9223372036854771712",
                _ => return None,
            };
            Some(limit.to_string())
        };
        let root = Path::new("/cg");
        let v2 = "0::/system.slice/job.scope\n";
        assert_eq!(cgroup_limit(v2, root, &files), Some(800 << 20));
        assert_eq!(cgroup_limit("0::/\n", root, &files), None);
        let v1 = "12:cpu,cpuacct:/docker\n4:memory:/docker\n";
        assert_eq!(cgroup_limit(v1, root, &files), Some(1 << 30));
        assert_eq!(
            cgroup_limit("4:memory:/\n", root, &files),
            Some(9223372036854771712)
        );
        assert_eq!(cgroup_limit("garbage", root, &files), None);
        assert_eq!(cgroup_limit("0::/../../system.slice\n", root, &files), None);
    }
}
