//! The pressure this process is under, read from the kernel at scrape time, so that a service
//! starved by its neighbours can be told apart from a slow dependency without node_exporter:
//!
//! - pressure stall information (`/proc/pressure/{cpu,io,memory}`): total time some task (and,
//!   for io and memory, every task) was stalled waiting for the resource;
//! - the process's own scheduling delay (`/proc/self/task/*/schedstat`, summed over threads):
//!   time runnable but not running;
//! - its cgroup's CPU throttling (`cpu.stat`: v2, or v1's `cpu` hierarchy, as on hosts still
//!   on cgroup v1 such as Amazon Linux 2 nodes) and v2 `memory.events` (limits reached, OOM
//!   kills).
//!
//! Each part is optional: a kernel without PSI, a cgroup without a CPU controller or a file the
//! process may not read leaves that part out rather than reporting zeros.

use std::path::{Path, PathBuf};

/// Stall totals from one `/proc/pressure/*` file, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stall {
    pub some_seconds: f64,
    /// `None` for CPU on kernels that report no `full` line (or only zeros before 5.13).
    pub full_seconds: Option<f64>,
}

/// What was readable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostPressure {
    pub cpu: Option<Stall>,
    pub io: Option<Stall>,
    pub memory: Option<Stall>,
    /// Seconds the process's threads ran, and waited runnable, in all.
    pub run_seconds: Option<f64>,
    pub wait_seconds: Option<f64>,
    /// cgroup `cpu.stat`: periods throttled, and time throttled in seconds (absent without a
    /// CPU controller).
    pub throttled_periods: Option<u64>,
    pub throttled_seconds: Option<f64>,
    /// cgroup v2 `memory.events`: (`low`, `high`, `max`, `oom`, `oom_kill`…, count).
    pub memory_events: Vec<(String, u64)>,
}

impl HostPressure {
    pub fn read() -> HostPressure {
        let stall = |r: &str| {
            std::fs::read_to_string(format!("/proc/pressure/{r}"))
                .ok()
                .and_then(|t| parse_pressure(&t))
        };
        let (run_seconds, wait_seconds) = match schedstat_totals(Path::new("/proc/self/task")) {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let cgroup = own_cgroup_v2();
        let read = |f: &str| {
            cgroup
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join(f)).ok())
        };
        let cpu_stat = read("cpu.stat").map(|t| keyed(&t)).unwrap_or_default();
        let (throttled_periods, throttled_seconds) =
            throttling(&cpu_stat).or_else(cgroup_v1_throttling).unzip();
        HostPressure {
            cpu: stall("cpu"),
            io: stall("io"),
            memory: stall("memory"),
            run_seconds,
            wait_seconds,
            throttled_periods,
            throttled_seconds,
            memory_events: read("memory.events").map(|t| keyed(&t)).unwrap_or_default(),
        }
    }
}

/// A `/proc/pressure/*` file: `some avg10=… total=<µs>` and, optionally, `full …`.
pub fn parse_pressure(text: &str) -> Option<Stall> {
    let total = |line: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| us as f64 / 1e6)
    };
    let mut stall = Stall::default();
    let mut some = false;
    for line in text.lines() {
        match line.split_whitespace().next() {
            Some("some") => {
                stall.some_seconds = total(line)?;
                some = true;
            }
            Some("full") => stall.full_seconds = total(line),
            _ => {}
        }
    }
    some.then_some(stall)
}

/// `/proc/<pid>/task/<tid>/schedstat` is `<run ns> <wait ns> <timeslices>`; summed over the
/// threads present now (a thread that exited takes its share with it, so the totals can step
/// down; the scraper's rate treats that as a counter reset).
pub fn schedstat_totals(tasks: &Path) -> Option<(f64, f64)> {
    let mut run = 0u64;
    let mut wait = 0u64;
    let mut any = false;
    for entry in std::fs::read_dir(tasks).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
        if let (Some(Some(r)), Some(Some(w))) = (f.next(), f.next()) {
            run += r;
            wait += w;
            any = true;
        }
    }
    any.then(|| (run as f64 / 1e9, wait as f64 / 1e9))
}

/// `key value` lines (cgroup `cpu.stat`, `memory.events`).
pub fn keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Periods throttled and seconds throttled from a `cpu.stat`: v2's `throttled_usec` or v1's
/// `throttled_time` (ns). `None` without a CPU controller's counts (v2's root has only usage).
pub fn throttling(cpu_stat: &[(String, u64)]) -> Option<(u64, f64)> {
    let get = |k: &str| cpu_stat.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let seconds = get("throttled_usec")
        .map(|us| us as f64 / 1e6)
        .or_else(|| get("throttled_time").map(|ns| ns as f64 / 1e9))?;
    Some((get("nr_throttled")?, seconds))
}

fn cgroup_v1_throttling() -> Option<(u64, f64)> {
    let dir = own_cgroup_v1(
        &std::fs::read_to_string("/proc/self/cgroup").ok()?,
        &std::fs::read_to_string("/proc/self/mountinfo").ok()?,
        "cpu",
    )?;
    let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    throttling(&keyed(&text))
}

/// This process's directory in the cgroup v1 hierarchy of `controller`: its
/// `/proc/self/cgroup` line naming the controller (`4:cpu,cpuacct:/path`), under the
/// mount of that hierarchy in `/proc/self/mountinfo` (less the mount's own root, as in a
/// container that sees only its part of the tree).
pub fn own_cgroup_v1(cgroup: &str, mountinfo: &str, controller: &str) -> Option<PathBuf> {
    let path = cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls.split(',').any(|c| c == controller).then_some(path)
    })?;
    let (root, mount) = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let carries = r.next() == Some("cgroup")
            && r.nth(1)
                .is_some_and(|opts| opts.split(',').any(|o| o == controller));
        let mut f = left.split_whitespace();
        carries.then(|| Some((f.nth(3)?, f.next()?))).flatten()
    })?;
    // By path components: a root `/a/b` is no prefix of `/a/bc`.
    let inside = Path::new(path)
        .strip_prefix(root)
        .unwrap_or(Path::new(path));
    Some(Path::new(mount).join(inside.strip_prefix("/").unwrap_or(inside)))
}

/// This process's cgroup v2 directory: the `0::/path` line of `/proc/self/cgroup`, under the
/// cgroup2 mount from `/proc/self/mountinfo` (`/sys/fs/cgroup`, or `…/unified` on hybrid
/// machines).
fn own_cgroup_v2() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup2"))
            .then(|| left.split_whitespace().nth(4))
            .flatten()
    })?;
    let dir = Path::new(mount).join(path.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_files_parse_with_and_without_full() {
        let cpu = "some avg10=78.93 avg60=51.23 avg300=16.08 total=55698276\n";
        assert_eq!(
            parse_pressure(cpu),
            Some(Stall {
                some_seconds: 55.698276,
                full_seconds: None
            })
        );
        let io = "some avg10=0.23 avg60=1.70 avg300=1.39 total=7109361\nfull avg10=0.02 avg60=1.42 avg300=1.25 total=6384396\n";
        let s = parse_pressure(io).unwrap();
        assert_eq!(s.full_seconds, Some(6.384396));
        assert_eq!(parse_pressure("garbage\n"), None);
        assert_eq!(parse_pressure("some avg10=1 total=x\n"), None);
    }

    #[test]
    fn throttling_is_read_from_v2_and_v1_counts() {
        let v2 = keyed("usage_usec 10\nnr_periods 9\nnr_throttled 3\nthrottled_usec 2500000\n");
        assert_eq!(throttling(&v2), Some((3, 2.5)));
        let v1 = keyed("nr_periods 9\nnr_throttled 4\nthrottled_time 1500000000\n");
        assert_eq!(throttling(&v1), Some((4, 1.5)));
        // A v2 root: usage only.
        assert_eq!(throttling(&keyed("usage_usec 10\nuser_usec 5\n")), None);
    }

    #[test]
    fn a_v1_cgroup_is_found_under_its_controllers_mount() {
        let cgroup = "5:memory:/svc\n4:cpu,cpuacct:/kubepods/pod1/abc\n0::/\n";
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            own_cgroup_v1(cgroup, mountinfo, "cpu"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc"
            ))
        );
        // A controller this process is listed under nowhere is not guessed.
        assert_eq!(own_cgroup_v1(cgroup, mountinfo, "pids"), None);
        // In a container the mount's root is the container's own cgroup.
        let inside = "32 31 0:29 /kubepods/pod1/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            own_cgroup_v1(cgroup, inside, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu"))
        );
        // A root that is a prefix of the path's text but not of its components is no root.
        let sibling = "32 31 0:29 /kubepods/pod1/ab /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            own_cgroup_v1(cgroup, sibling, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu/kubepods/pod1/abc"))
        );
    }

    #[test]
    fn keyed_files_parse() {
        let k = keyed("usage_usec 10\nnr_throttled 3\nthrottled_usec 2500000\nbad line x\n");
        assert_eq!(
            k,
            [
                ("usage_usec".to_string(), 10),
                ("nr_throttled".into(), 3),
                ("throttled_usec".into(), 2_500_000)
            ]
        );
    }

    /// This process's own threads are readable, and a busy thread's time is counted: a thread
    /// that never sleeps is either running or waiting for a CPU, so the two together grow by
    /// its wall time (on a loaded machine most of it may be waiting).
    #[test]
    fn own_schedstat_is_read_and_counts_work() {
        let Some((run, wait)) = schedstat_totals(Path::new("/proc/self/task")) else {
            // A kernel built without schedstat: nothing to check here.
            return;
        };
        assert!(run >= 0.0 && wait >= 0.0);
        // This thread alone (a task directory holding only it): the other tests' threads that
        // end during the loop would take their time out of the process's sum.
        let me = tempfile::tempdir().unwrap();
        let thread = Path::new("/proc").join(std::fs::read_link("/proc/thread-self").unwrap());
        std::os::unix::fs::symlink(thread, me.path().join("me")).unwrap();
        let (run, wait) = schedstat_totals(me.path()).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(60);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (ran, waited) = schedstat_totals(me.path()).unwrap();
        assert!(
            ran + waited >= run + wait + 0.05,
            "ran {run} → {ran}, waited {wait} → {waited}"
        );
    }
}
