//! Separate hosts on one machine: Linux network namespaces joined by veth pairs to a bridge.
//!
//! [`Hosts::create`] makes a "hub" namespace holding the bridge (`10.213.0.1/24`, where a
//! server listens) and `n` host namespaces, host `i` at `10.213.0.{10 + i}` with its own
//! loopback, interface and routes: a process started with [`Hosts::command`] connects from that
//! address only, as a pod on another node would. Nothing is added to the machine's own
//! namespace, so its routes and firewall are neither used nor disturbed.
//!
//! Names are unique per process and call; everything is deleted when the [`Hosts`] is dropped
//! (a failed test included), and namespaces left by a test process that was killed outright are
//! deleted by the next one. Needs root and `ip` (iproute2); [`Hosts::create`] says why it
//! could not, and [`required`] whether the caller must fail rather than skip.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Set to `1` to make a machine that cannot create namespaces fail the tests that need them
/// instead of skipping them.
pub const REQUIRE_ENV: &str = "PEAKLOAD_TEST_NETNS";

/// Whether [`REQUIRE_ENV`] asks for the namespace tests to run.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

const PREFIX: &str = "peakload-t";

/// The hub's address on the bridge, where servers listen.
pub const HUB_ADDR: &str = "10.213.0.1";

pub struct Hosts {
    hub: String,
    hosts: Vec<String>,
}

impl Hosts {
    /// A hub and `n` hosts on its bridge; `Err` with the reason when this machine cannot make
    /// them (not root, no `ip`, namespaces or veth not permitted).
    pub fn create(n: usize) -> Result<Hosts, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        match Command::new("ip").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(format!("`ip -V` failed: {}", text(&o.stderr))),
            Err(e) => {
                return Err(format!(
                    "no `ip` command ({e}): install iproute2 (apt-get install iproute2)"
                ))
            }
        }
        remove_stale();
        static CALLS: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            CALLS.fetch_add(1, Ordering::Relaxed)
        );
        let mut made = Hosts {
            hub: format!("{id}-hub"),
            hosts: Vec::new(),
        };
        // The first namespace is the probe: failing here is the machine, not the test.
        ip(&["netns", "add", &made.hub])?;
        let hub = made.hub.clone();
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_ADDR}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = format!("{id}-h{i}");
            ip(&["netns", "add", &ns])?;
            made.hosts.push(ns.clone());
            let port = format!("p{i}");
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", Hosts::addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(made)
    }

    /// Host `i`'s address.
    pub fn addr(i: usize) -> String {
        format!("10.213.0.{}", 10 + i)
    }

    /// `program` run inside host `i`'s namespace.
    pub fn command(&self, i: usize, program: impl Into<PathBuf>) -> Command {
        in_namespace(&self.hosts[i], program.into())
    }

    /// `program` run inside the hub's namespace (it can listen on [`HUB_ADDR`]).
    pub fn hub_command(&self, program: impl Into<PathBuf>) -> Command {
        in_namespace(&self.hub, program.into())
    }

    /// Whether host `i` reaches `HUB_ADDR:port` over TCP, asked from a thread that enters its
    /// namespace (the rest of the test process stays where it is).
    pub fn reaches(&self, i: usize, port: u16) -> Result<(), String> {
        let path = format!("/run/netns/{}", self.hosts[i]);
        std::thread::spawn(move || -> Result<(), String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns has no memory-safety preconditions; the descriptor is open for
            // the call and only this thread changes namespace.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            let addr = std::net::SocketAddr::new(HUB_ADDR.parse().unwrap(), port);
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
                .map(drop)
                .map_err(|e| format!("connect {addr}: {e}"))
        })
        .join()
        .expect("the probe thread does not panic")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces, and so the bridge and both ends of
        // every veth pair.
        for ns in self.hosts.iter().chain(std::iter::once(&self.hub)) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn in_namespace(ns: &str, program: PathBuf) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), text(&out.stderr)))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Deletes the namespaces of test processes that no longer run (killed before their drop).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
