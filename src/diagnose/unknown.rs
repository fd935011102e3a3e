//! What the diagnosis does not know: when the users degraded and no observed signal explains
//! it, say so, and say what to observe next — specifically, from what was and was not observed:
//! the host (a CPU-starved service is invisible without it), the database's own metrics (a lock
//! shows only as its callers' waits), and the service's own request timings (flat ones put the
//! time on the path between the generator and the service).

use regex::Regex;
use std::sync::OnceLock;

use super::rank::{Scored, CHANGE_Z};
use super::sli::Sli;
use super::Input;
use crate::record::findings::{Finding, Kind};

/// A finding below this score explains the degradation too weakly to stop asking.
const EXPLAINS: f64 = 0.3;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid pattern"))
}

/// The host's view: CPU per core or mode, pressure stall, scheduling delay, cgroup CPU.
fn host_signal(name: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)^(node_cpu|node_pressure|node_load|node_schedstat|host_pressure|process_schedstat|cgroup_cpu|container_cpu|cpuutilization)",
    )
    .is_match(name)
}

/// The database's own metrics, as its exporters and CloudWatch name them.
fn database_own(name: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)^(mysql_|mysqld_|mariadb_|innodb|pg_|postgres|aws_rds|rds_)|dbinstanceidentifier|readlatency|writelatency|consumed(read|write)capacity",
    )
    .is_match(name)
}

/// What a service measures of the database from its side (a caller's timings, a pool).
fn database_seen_by_callers(name: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)^(db_|database_|sql_|hikaricp_|go_sql_)|pool").is_match(name)
}

/// A service's own timing of the requests it serves.
fn service_timing(name: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)^(http_(server_)?request_duration|http_server_duration|request_duration|targetresponsetime|latency\{)",
    )
    .is_match(name)
}

pub fn unknowns(input: &Input, sli: &Sli, findings: &[Finding], scored: &[Scored]) -> Vec<String> {
    if !sli.degraded() {
        return Vec::new();
    }
    let explained = findings.iter().any(|f| {
        f.kind != Kind::GeneratorLimited
            && f.signal != "errors"
            && f.explained_by.is_none()
            && f.score >= EXPLAINS
    });
    if explained {
        return Vec::new();
    }
    let names: Vec<&str> = input.signals.iter().map(|s| s.name.as_str()).collect();
    let mut out = vec![if findings
        .iter()
        .all(|f| f.signal == "errors" || f.kind == Kind::GeneratorLimited)
    {
        "no observed signal explains the users' degradation".to_string()
    } else {
        "the findings explain the users' degradation only weakly (no score reaches 0.3)".to_string()
    }];
    // A resource that clearly moved, but only after the users: too late to be named a cause, and
    // yet a cause that builds up behind its first symptom (a disk's stall once the page cache
    // has filled behind writers that first took CPU) looks the same. Said, not named.
    if let Some(s) = scored.iter().find(|s| {
        // Dated by its own sustained departure from its baseline (`changed_at`), not by the
        // size of its jump at the users' onset, which a later rise does not have.
        // A gauge read at the next scrape is not late.
        s.kind.is_some()
            && s.changed_at
                .is_some_and(|t| t > sli.onset + 1 && t <= sli.end)
    }) {
        let at = s.changed_at.unwrap_or(sli.onset);
        out.push(format!(
            "{} ({}) moved clearly but only from t={at}s, {} s after the users' experience: too late to be named its cause here; if it built up behind a first symptom, it may still be",
            s.name,
            s.kind.map_or("", Kind::as_str),
            at - sli.onset
        ));
    }
    if !names.iter().any(|n| host_signal(n)) {
        out.push("no host signals were collected (CPU per core, pressure stall of CPU, memory and I/O, scheduling delay): a service starved of CPU by a neighbour, or waiting for a saturated disk, looks like nothing here — scrape node_exporter, or a service that exports its host's pressure (the bundled stack does: host_pressure_*, process_schedstat_*)".into());
    }
    if names.iter().any(|n| database_seen_by_callers(n)) && !names.iter().any(|n| database_own(n)) {
        out.push("the database's own metrics are not observed (mysqld_exporter, postgres_exporter, or RDS/DynamoDB in CloudWatch): its locks, I/O and CPU show only as its callers' waits".into());
    }
    let timings: Vec<&Scored> = scored.iter().filter(|s| service_timing(&s.name)).collect();
    if timings.is_empty() {
        out.push("the service's own request timings are not observed: whether the time was spent inside it or on the way to it cannot be told — scrape its request-duration histogram".into());
    } else if timings
        .iter()
        .all(|s| s.z < CHANGE_Z || s.changed_at.is_none() || s.direction < 0.0)
    {
        out.push(format!(
            "the service's own request timings ({} of them, e.g. {}) stayed flat while the users' latency rose: the time was spent outside it — on the path between the generator and the service (a delaying proxy, a load balancer or the network look like this) or on the generator's machine; observe that path (the load balancer's metrics, a probe next to the service)",
            timings.len(),
            timings[0].name
        ));
    }
    let users_erred = sli.report.error_rate.as_ref().is_some_and(|e| e.degraded);
    if users_erred && !input.events.iter().any(|e| e.name == "log") {
        out.push("no logs were read: add the service's log group in [observe] to see what the errors were".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_for_what_they_observe() {
        assert!(host_signal(
            r#"node_cpu_seconds_total:rate{cpu="1",mode="user"}"#
        ));
        assert!(host_signal("host_pressure_cpu_waiting_seconds_total:rate"));
        assert!(host_signal("process_schedstat_waiting_seconds_total:rate"));
        assert!(!host_signal("process_cpu_seconds_total:rate"));
        assert!(database_own("mysql_global_status_threads_running"));
        assert!(database_own("pg_stat_activity_count"));
        assert!(!database_own("db_operation_duration_seconds:p95"));
        assert!(database_seen_by_callers(
            "db_operation_duration_seconds:p95"
        ));
        assert!(service_timing(
            r#"http_request_duration_seconds:p95{route="/app"}"#
        ));
        assert!(!service_timing("db_operation_duration_seconds:p95"));
    }
}
