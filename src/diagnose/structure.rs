//! The system's declared structure: which component each signal belongs to, and what depends
//! on what, so that an effect downstream of an earlier cause is not named as a cause itself.
//!
//! A stack declares it in its own `/metrics` (the bundled one does; see
//! `target-stack/src/metrics.rs`), read from the scraped series, each of which carries the
//! `instance` it came from:
//!
//! ```text
//! peakload_stack_info{role="worker",backend="mysql"} 1
//! peakload_stack_dependency{component="worker:email",on="database"} 1
//! peakload_stack_dependency{component="queue:notifications",on="worker:email"} 1
//! ```
//!
//! `component` depends on `on`: a change in `on` shows up in `component` (a caller slows with
//! what it calls; a queue backs up when its consumer stops). A signal belongs to
//! `worker:NAME` by its `worker` label, to `queue:NAME` by its `queue` label, to `database`
//! when it times or counts database work (`db_*`, a connection pool), and otherwise to the role
//! of the process it was scraped from (`instance` → `peakload_stack_info`'s `role`).
//! Nothing is assumed when nothing is declared.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::rules::split_key;
use super::Signal;

const INFO: &str = "peakload_stack_info";
const DEPENDENCY: &str = "peakload_stack_dependency";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    /// A scraped endpoint's `instance` → the role of the process there.
    roles: BTreeMap<String, String>,
    /// A component → the components it depends on directly.
    on: BTreeMap<String, BTreeSet<String>>,
}

/// Whether a signal declares structure rather than measuring anything.
pub fn declares(name: &str) -> bool {
    let (metric, _) = split_key(name);
    metric == INFO || metric == DEPENDENCY
}

impl Structure {
    /// The structure declared among the observed signals (empty when none is).
    pub fn declared(signals: &[Signal]) -> Structure {
        let mut s = Structure::default();
        for sig in signals {
            let (metric, dims) = split_key(&sig.name);
            let label = |k: &str| {
                dims.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            match metric {
                INFO => {
                    if let (Some(i), Some(r)) = (label("instance"), label("role")) {
                        s.roles.insert(i, r);
                    }
                }
                DEPENDENCY => {
                    if let (Some(c), Some(o)) = (label("component"), label("on")) {
                        if c != o {
                            s.on.entry(c).or_default().insert(o);
                        }
                    }
                }
                _ => {}
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.on.is_empty()
    }

    /// The component a signal (`name{dims}`) belongs to, if the structure says.
    pub fn component(&self, signal: &str) -> Option<String> {
        let (metric, dims) = split_key(signal);
        let label = |k: &str| {
            dims.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        if let Some(w) = label("worker") {
            return Some(format!("worker:{w}"));
        }
        if let Some(q) = label("queue") {
            return Some(format!("queue:{q}"));
        }
        let m = metric.to_ascii_lowercase();
        if m.starts_with("db_") || m.contains("database") || m.contains("pool") {
            return Some("database".into());
        }
        label("instance").and_then(|i| self.roles.get(&i).cloned())
    }

    /// How `effect` depends on `cause`, as the chain of components from the cause to the
    /// effect (`["database", "worker:email", "queue:notifications"]`); `None` when it does not.
    pub fn path(&self, effect: &str, cause: &str) -> Option<Vec<String>> {
        if effect == cause {
            return None;
        }
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut todo = VecDeque::from([effect]);
        while let Some(c) = todo.pop_front() {
            for up in self.on.get(c).into_iter().flatten().map(String::as_str) {
                if up == effect || came_from.contains_key(up) {
                    continue;
                }
                came_from.insert(up, c);
                if up == cause {
                    let mut chain = vec![cause.to_string()];
                    let mut at = cause;
                    while let Some(&next) = came_from.get(at) {
                        chain.push(next.to_string());
                        at = next;
                    }
                    return Some(chain);
                }
                todo.push_back(up);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(name: &str) -> Signal {
        Signal {
            name: name.into(),
            values: vec![1.0; 5],
            ..Default::default()
        }
    }

    #[test]
    fn declared_dependencies_chain_and_signals_find_their_component() {
        let s = Structure::declared(&[
            sig(r#"peakload_stack_info{backend="mysql",instance="127.0.0.1:9090",role="worker"}"#),
            sig(
                r#"peakload_stack_dependency{component="worker:email",instance="127.0.0.1:9090",on="database"}"#,
            ),
            sig(
                r#"peakload_stack_dependency{component="queue:notifications",instance="127.0.0.1:9090",on="worker:email"}"#,
            ),
            sig(
                r#"peakload_stack_dependency{component="worker:email",instance="127.0.0.1:9090",on="worker"}"#,
            ),
        ]);
        assert!(!s.is_empty());
        assert_eq!(
            s.path("queue:notifications", "database").unwrap(),
            ["database", "worker:email", "queue:notifications"]
        );
        assert_eq!(
            s.path("queue:notifications", "worker").unwrap(),
            ["worker", "worker:email", "queue:notifications"]
        );
        // Not the other way round, and nothing depends on itself.
        assert_eq!(s.path("database", "queue:notifications"), None);
        assert_eq!(s.path("database", "database"), None);
        assert_eq!(
            s.component(
                r#"worker_messages_processed_total:rate{instance="127.0.0.1:9090",worker="email"}"#
            )
            .as_deref(),
            Some("worker:email")
        );
        assert_eq!(
            s.component(r#"db_operations_in_flight{instance="127.0.0.1:8080"}"#)
                .as_deref(),
            Some("database")
        );
        assert_eq!(
            s.component(r#"up{instance="127.0.0.1:9090"}"#).as_deref(),
            Some("worker")
        );
        assert_eq!(s.component(r#"up{instance="127.0.0.1:1"}"#), None);
        assert!(declares(r#"peakload_stack_info{role="api"}"#));
        assert!(!declares("up"));
    }

    #[test]
    fn nothing_declared_assumes_nothing() {
        let s = Structure::declared(&[sig("db_operations_in_flight"), sig("queue_depth")]);
        assert!(s.is_empty());
        assert_eq!(s.path("queue:notifications", "database"), None);
    }
}
