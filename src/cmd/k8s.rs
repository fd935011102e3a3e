//! `peakload k8s render`: the Kubernetes manifests of a distributed run, printed as YAML.
//!
//! From a scenario file and `--shards N` it makes a ConfigMap (the scenario and the feeder
//! files it reads), an Indexed Job whose pod `i` runs shard `i` of `N` from one absolute start
//! time, and a suspended merge Job to resume once the shards have finished; without
//! `--out-s3`, a ReadWriteMany claim for the results too. Above [`TREE_ABOVE`] shards the merge
//! has two levels: a suspended Indexed Job of parts (pod `k` merges shards `k·S..k·S+S−1` with
//! `merge --shards-per-part S`), then the merge of the parts. Every pod gets the same
//! arguments: the shard or part comes from `JOB_COMPLETION_INDEX` (and the shard count from
//! `PEAKLOAD_SHARD_COUNT`), so nothing in a manifest grows with N.
//!
//! The manifests are built as JSON values and written as YAML by [`yaml`], which quotes every
//! string, so no value from the scenario can change the document's structure.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::{s3, Failure, Outcome};
use crate::cli::K8sRenderCli;
use crate::scenario::{BaseUrl, Load, Scenario};

/// CPU seconds the generator spends per request, open model: 4.100 CPU-s per 100k requests
/// at 5,000 arrivals/s (bench/README.md, `bench.py`, merged tree of 2026-12-07, the slower of
/// the development machines). The closed model costs less per request (1.320), so sizing from
/// the open figure errs towards more CPU.
pub const CPU_S_PER_REQUEST: f64 = 4.100 / 100_000.0;

/// The share of its CPU a shard is planned to use: the rest absorbs bursts (a spike stage,
/// Poisson arrivals, slow responses holding more connections), so the generator does not
/// become the bottleneck and start arrivals late.
pub const CPU_TARGET_UTILIZATION: f64 = 0.5;

/// Above this many cores a shard would be a big pod on most node types: more shards instead.
const CORES_PER_SHARD_WARNING: u32 = 16;

/// ConfigMaps are limited to 1 MiB in all (etcd's object size).
const CONFIGMAP_LIMIT: usize = 1024 * 1024;

/// Above this many shards the merge is spread over pods. Measured for an hour at 10,000
/// requests/s a shard on 2 cores (bench/README.md): one merge of N shards costs about
/// 6 + 0.6·N CPU-s, the two levels about 12 + 2.1·√N for one part and the final together
/// (see [`shards_per_part`]). They break even near 30 shards; at 40 the parts save about
/// 5 CPU-s an hour of run, less than starting a second Job's pods takes, at 100 about 30.
pub const TREE_ABOVE: u32 = 40;

/// Shards merged by one pod of the parts' Job, for `shards` in all. Measured for an hour at
/// 10,000 requests/s a shard (bench/README.md, 2 cores): a part of S shards costs about
/// 6 + 0.6·S CPU-s (its own merged log is the fixed share), the final merge about 6 + 1.8
/// CPU-s a part (a part's log holds more buckets a line than a shard's). One part and the
/// final run one after the other, so their sum is least near S = √(3N); at least 10.
fn shards_per_part(shards: u32) -> u32 {
    ((3.0 * f64::from(shards)).sqrt().ceil() as u32).max(10)
}

/// Where the scenario ConfigMap is mounted in the pods.
const SCENARIO_DIR: &str = "/scenario";
/// Where the shared results volume is mounted (without `--out-s3`).
const RESULTS_DIR: &str = "/results";

pub fn render(args: &K8sRenderCli) -> Result<Outcome, Failure> {
    let scenario = crate::scenario::load_scenario(&args.scenario).map_err(Failure::Scenario)?;
    if args.shards == 0 {
        return Err(Failure::Invalid("--shards must be at least 1".into()));
    }
    match &args.target {
        Some(t) => super::run::check_target(t)?,
        None if matches!(scenario.base_url, BaseUrl::Stack) => {
            return Err(Failure::Invalid(
                "the scenario's base_url is \"stack\": every pod would start and load a bundled \
                 stack of its own; pass --target URL, the service the shards load together"
                    .into(),
            ));
        }
        None => {}
    }
    if let Some(out) = &args.out_s3 {
        if s3::location(Path::new(out))?.is_none() {
            return Err(Failure::Invalid(format!(
                "--out-s3 {out:?}: not an s3://bucket/prefix/ URL"
            )));
        }
    }
    let name = match &args.name {
        Some(n) => check_name(n)?,
        None => default_name(&scenario.name),
    };
    let files = scenario_files(&args.scenario, &scenario)?;
    let start_at = SystemTime::now() + args.start_in;
    let mut size = Sizing::of(&scenario, args.shards);
    if let Some(cores) = args.cpu {
        size.cores = cores;
        size.given = true;
    }
    if size.cores > CORES_PER_SHARD_WARNING && !size.given {
        crate::errln!(
            "warning: each shard would need {} cores at the planned peak ({:.0} requests/s a \
             shard); more shards (--shards {}) keep pods a usual node size",
            size.cores,
            size.peak_rps_per_shard.unwrap_or_default(),
            args.shards * size.cores.div_ceil(CORES_PER_SHARD_WARNING)
        );
    }
    let docs = manifests(args, &scenario, &name, &files, start_at, &size);
    let mut text = header(args, &name, start_at, &size, &scenario);
    for doc in &docs {
        text.push_str("---\n");
        text.push_str(&yaml::to_string(doc));
    }
    // The manifests are the result: a write error fails the render (`cmd::main`); `… | head`
    // closing the pipe early does not.
    crate::out!("{text}");
    Ok(Outcome::Success)
}

/// A file the pods need, as the ConfigMap holds it.
struct ScenarioFile {
    /// The ConfigMap key (`[-._a-zA-Z0-9]+`).
    key: String,
    /// Where it is mounted, relative to the scenario's directory.
    path: String,
    text: String,
}

/// The scenario and every feeder file it reads, with the paths the scenario names them by.
fn scenario_files(path: &Path, scenario: &Scenario) -> Result<Vec<ScenarioFile>, Failure> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_owned()
    };
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            Failure::Invalid(format!(
                "{}: {e} (a ConfigMap holds text files only)",
                p.display()
            ))
        })
    };
    let scenario_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("scenario.toml")
        .to_owned();
    let mut files = vec![ScenarioFile {
        key: config_key(&scenario_name),
        path: scenario_name.clone(),
        text: read(path)?,
    }];
    let base = dir.canonicalize().unwrap_or(dir);
    for feeder in &scenario.feeders {
        let full = feeder
            .path
            .canonicalize()
            .unwrap_or_else(|_| feeder.path.clone());
        let rel = full.strip_prefix(&base).map_err(|_| {
            Failure::Invalid(format!(
                "feeder {:?}: {} is outside the scenario's directory {}; the pods mount the \
                 scenario's directory only: move the file next to the scenario",
                feeder.name,
                feeder.path.display(),
                base.display()
            ))
        })?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        if files.iter().any(|f| f.path == rel) {
            continue;
        }
        let mut key = config_key(&rel);
        while files.iter().any(|f| f.key == key) {
            key = format!("_{key}");
        }
        files.push(ScenarioFile {
            key,
            path: rel,
            text: read(&feeder.path)?,
        });
    }
    let total: usize = files.iter().map(|f| f.text.len()).sum();
    if total > CONFIGMAP_LIMIT - 16 * 1024 {
        return Err(Failure::Invalid(format!(
            "the scenario and its feeder files are {} KiB; a ConfigMap holds at most 1 MiB: \
             put the data files into the image (or a volume) and render without them",
            total / 1024
        )));
    }
    Ok(files)
}

/// `data/users.csv` → `data__users.csv`: ConfigMap keys have no `/`.
fn config_key(path: &str) -> String {
    path.replace('/', "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A DNS-1123 label short enough for the Job's pod hostnames (`NAME-INDEX`, at most 63).
fn check_name(name: &str) -> Result<String, Failure> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Failure::Invalid(format!(
            "--name {name:?}: at most 40 lowercase letters, digits and hyphens, not at either \
             end (the pods are named NAME-shards-INDEX-…)"
        )))
    }
}

fn default_name(scenario: &str) -> String {
    let mut s: String = format!("peakload-{scenario}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.truncate(40);
    s.trim_matches('-').to_owned()
}

/// What one shard needs, from the plan's peak and the measured cost per request.
struct Sizing {
    /// Requests a second one shard sends at the plan's peak (open model only; a closed
    /// model's rate depends on the target's latency).
    peak_rps_per_shard: Option<f64>,
    cores: u32,
    memory_mib: u32,
    /// The plan's largest VU count, per shard.
    vus_per_shard: u32,
    /// `cores` came from `--cpu`.
    given: bool,
}

impl Sizing {
    fn of(scenario: &Scenario, shards: u32) -> Sizing {
        // Requests per iteration: the journeys' step counts weighted by their shares.
        let weights: u32 = scenario.journeys.iter().map(|j| j.weight).sum();
        let steps = if weights == 0 {
            1.0
        } else {
            scenario
                .journeys
                .iter()
                .map(|j| f64::from(j.weight) * j.steps.len() as f64)
                .sum::<f64>()
                / f64::from(weights)
        };
        let (peak_rps_per_shard, vus) = match &scenario.load {
            Load::Open(o) => {
                let peak = o
                    .stages
                    .iter()
                    .map(|s| s.target_rps)
                    .fold(o.start_rps, f64::max);
                (Some(peak * steps / f64::from(shards)), o.max_vus)
            }
            Load::Closed(c) => (
                None,
                c.stages
                    .iter()
                    .map(|s| s.target_vus)
                    .fold(c.start_vus, u32::max),
            ),
        };
        let cores = match peak_rps_per_shard {
            Some(rps) => (rps * CPU_S_PER_REQUEST / CPU_TARGET_UTILIZATION)
                .ceil()
                .max(1.0) as u32,
            None => 2,
        };
        let vus_per_shard = vus.div_ceil(shards);
        // 8 MB resident at 2,000 requests/s (bench/README.md, memory run) plus an estimate
        // of 64 KiB per VU (its buffers and connection): not measured, so rounded up generously.
        let memory_mib = (256 + vus_per_shard.div_ceil(16)).next_multiple_of(64);
        Sizing {
            peak_rps_per_shard,
            cores,
            memory_mib,
            vus_per_shard,
            given: false,
        }
    }
}

/// The comment at the top: what to run, in order, and what the numbers came from.
fn header(
    args: &K8sRenderCli,
    name: &str,
    start_at: SystemTime,
    size: &Sizing,
    scenario: &Scenario,
) -> String {
    let ns = args
        .namespace
        .as_deref()
        .map_or(String::new(), |n| format!(" -n {n}"));
    let at = humantime::format_rfc3339_seconds(start_at);
    let sizing =
        match size.peak_rps_per_shard {
            _ if size.given => format!(
            "# {} core(s) a shard, as given (--cpu); the plan's peak is {} requests/s a shard.\n",
            size.cores,
            size.peak_rps_per_shard
                .map_or("not known ahead (closed model)".to_owned(), |r| format!("{r:.0}"))
        ),
            Some(rps) => format!(
            "# Sized from the plan's peak, {rps:.0} requests/s a shard, at {:.1} µs of CPU per \
             request\n# (bench/README.md, open model) and {:.0} % CPU use: {} core(s) each.\n",
            CPU_S_PER_REQUEST * 1e6,
            CPU_TARGET_UTILIZATION * 100.0,
            size.cores
        ),
            None => "# A closed model's request rate depends on the target's latency: 2 cores a \
                 shard, --threads 2.\n# Check a shard's generator CPU in the merged per-shard \
                 table and re-render with more shards if it is high.\n"
                .to_owned(),
        };
    let sizing = format!(
        "{sizing}# Memory: {} MiB requested, for up to {} VUs a shard (256 MiB and an estimated \
         64 KiB a VU).\n",
        size.memory_mib, size.vus_per_shard
    );
    let parts = parts(args.shards);
    let results = match &args.out_s3 {
        Some(url) => format!(
            "# Results: {url}shard-I-of-{}/ from each shard; {}the merge writes {url}merged/.\n# \
             The pods need S3 access to that prefix (IRSA or EKS Pod Identity on the service \
             account{}).\n",
            args.shards,
            if parts.is_some() {
                format!("{url}merged-parts/part-K/ from each part; ")
            } else {
                String::new()
            },
            args.service_account
                .as_deref()
                .map_or(String::new(), |s| format!(" {s}"))
        ),
        None => format!(
            "# Results: the ReadWriteMany claim {name}-results, {RESULTS_DIR}/shard-I/ from \
             each shard, {}{RESULTS_DIR}/merged/ from the merge.\n",
            if parts.is_some() {
                format!("{RESULTS_DIR}/merged-parts/part-K/ from each part, ")
            } else {
                String::new()
            },
        ),
    };
    let resume = |job: &str| {
        format!(
            "#   kubectl{ns} patch job/{name}-{job} --type=merge -p '{{\"spec\":{{\"suspend\":false}}}}'\n"
        )
    };
    let merge_steps = match parts {
        Some((size, n)) => format!(
            "{}#   kubectl{ns} wait job/{name}-merge-parts --for=condition=complete --timeout=1800s \\\n\
             #     || kubectl{ns} get job/{name}-merge-parts -o jsonpath='{{.status.failedIndexes}}'\n\
             {}#   kubectl{ns} logs -f job/{name}-merge     # summary and per-shard table; exit 7: incomplete\n\
             # {} shards: merged in two levels, {n} parts of up to {size} shards each on \
             their own pods, then the parts\n# (wall time about one part's merge plus the \
             final's, bench/README.md).\n",
            resume("merge-parts"),
            resume("merge"),
            args.shards,
        ),
        None => format!(
            "{}#   kubectl{ns} logs -f job/{name}-merge     # summary and per-shard table; exit 7: incomplete\n",
            resume("merge")
        ),
    };
    format!(
        "# peakload distributed run of {:?}: {} shards, loaded from {at}.\n\
         # Apply before then (the shards refuse to start more than 5s late, exit 6):\n\
         #   peakload k8s render ... | kubectl{ns} apply -f -\n\
         #   kubectl{ns} wait job/{name}-shards --for=condition=complete --timeout={}s \\\n\
         #     || kubectl{ns} get job/{name}-shards -o jsonpath='{{.status.failedIndexes}}'\n\
         {merge_steps}{sizing}{results}",
        scenario.name,
        args.shards,
        deadline(args, scenario).as_secs(),
    )
}

/// The shards a part and how many parts the merge is spread over, `None` when one pod merges
/// the shards.
fn parts(shards: u32) -> Option<(u32, u32)> {
    (shards > TREE_ABOVE).then(|| {
        let size = shards_per_part(shards);
        (size, shards.div_ceil(size))
    })
}

/// How long the shards' Job may run: until the start, the plan, the drain and the after-run
/// reads, plus ten minutes.
fn deadline(args: &K8sRenderCli, scenario: &Scenario) -> Duration {
    args.start_in
        + scenario.load.duration()
        + scenario.observe.settle
        + Duration::from_secs(10 * 60)
}

fn manifests(
    args: &K8sRenderCli,
    scenario: &Scenario,
    name: &str,
    files: &[ScenarioFile],
    start_at: SystemTime,
    size: &Sizing,
) -> Vec<Value> {
    let meta = |suffix: &str, component: &str| {
        let mut m = json!({
            "name": format!("{name}-{suffix}"),
            "labels": labels(name, component),
        });
        if let Some(ns) = &args.namespace {
            m["namespace"] = json!(ns);
        }
        m
    };
    let scenario_path = format!("{SCENARIO_DIR}/{}", files[0].path);
    let mut docs = Vec::new();

    let data: Map<String, Value> = files
        .iter()
        .map(|f| (f.key.clone(), json!(f.text)))
        .collect();
    docs.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("scenario", "scenario"),
        "data": data,
    }));

    let (shard_out, merge_in, merge_out, parts_out) = match &args.out_s3 {
        Some(url) => {
            let url = if url.ends_with('/') {
                url.clone()
            } else {
                format!("{url}/")
            };
            (
                url.clone(),
                url.clone(),
                format!("{url}merged/"),
                format!("{url}merged-parts/"),
            )
        }
        None => {
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta("results", "results"),
                "spec": {
                    // Every shard writes its own directory; the merge reads them all.
                    "accessModes": ["ReadWriteMany"],
                    "resources": { "requests": { "storage": "5Gi" } },
                },
            }));
            (
                format!("{RESULTS_DIR}/shard-$(SHARD_INDEX)"),
                RESULTS_DIR.to_owned(),
                format!("{RESULTS_DIR}/merged"),
                format!("{RESULTS_DIR}/merged-parts/"),
            )
        }
    };
    let cpu = size.cores.to_string();
    let memory = format!("{}Mi", size.memory_mib);
    let memory_limit = format!("{}Mi", (size.memory_mib * 2).max(1024));
    let at = humantime::format_rfc3339_seconds(start_at).to_string();
    let mut shard_args = vec![
        "run".to_owned(),
        scenario_path.clone(),
        "--no-tui".to_owned(),
        "--threads".to_owned(),
        cpu.clone(),
        "--start-at".to_owned(),
        at,
        "--out".to_owned(),
        shard_out,
    ];
    if let Some(t) = &args.target {
        shard_args.extend(["--target".to_owned(), t.clone()]);
    }
    let mut env = vec![
        json!({ "name": crate::plan::shard::COUNT_ENV, "value": args.shards.to_string() }),
        json!({
            "name": "SHARD_INDEX",
            "valueFrom": { "fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            } },
        }),
    ];
    if let Some(endpoint) = &args.s3_endpoint {
        env.push(json!({ "name": "AWS_ENDPOINT_URL_S3", "value": endpoint }));
    }
    let shard_container = container(
        &args.image,
        "peakload",
        shard_args,
        env.clone(),
        json!({
            "requests": { "cpu": cpu, "memory": memory },
            "limits": { "memory": memory_limit },
        }),
        args.out_s3.is_none(),
    );
    let shards = args.shards;
    docs.push(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("shards", "shard"),
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            // A failed shard is never run again: restarted late, it would run a different
            // test from the others; the merge names it missing instead.
            "backoffLimitPerIndex": 0,
            "activeDeadlineSeconds": deadline(args, scenario).as_secs(),
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": { "labels": labels(name, "shard") },
                "spec": pod_spec(
                    args,
                    name,
                    shard_container,
                    // One generator per node where the cluster has room, so shards do not
                    // share CPUs.
                    Some(json!([{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": { "matchLabels": labels(name, "shard") },
                    }])),
                ),
            },
        },
    }));

    let merge_env: Vec<Value> = env
        .into_iter()
        .filter(|e| e["name"] == "AWS_ENDPOINT_URL_S3")
        .collect();
    let final_in = match parts(shards) {
        None => merge_in,
        Some((size, n)) => {
            // Every part reads all the shards' place and keeps its own range of them; the
            // index in its output path comes from the pod, like a shard's.
            let mut env = merge_env.clone();
            env.push(json!({
                "name": "PART_INDEX",
                "valueFrom": { "fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                } },
            }));
            let part_args = vec![
                "merge".to_owned(),
                merge_in,
                "--shards-per-part".to_owned(),
                size.to_string(),
                "--out".to_owned(),
                format!("{parts_out}part-$(PART_INDEX)"),
            ];
            // A part of 10 shards × 1 h: about 8 s on 2 cores, 20 shards about 11 s
            // (bench/README.md).
            docs.push(merge_job(
                args,
                name,
                meta("merge-parts", "merge-part"),
                "merge-part",
                (part_args, env),
                "2",
                json!({
                    "completionMode": "Indexed",
                    "completions": n,
                    "parallelism": n,
                    // A part only reads what the shards wrote: running it again is safe.
                    "backoffLimitPerIndex": 1,
                }),
            ));
            parts_out
        }
    };
    let merge_args = vec![
        "merge".to_owned(),
        final_in,
        "--scenario".to_owned(),
        scenario_path,
        "--out".to_owned(),
        merge_out,
    ];
    docs.push(merge_job(
        args,
        name,
        meta("merge", "merge"),
        "merge",
        (merge_args, merge_env),
        // After parts, the final merge is the longer of the two steps (measured on 2 cores).
        if parts(shards).is_some() { "2" } else { "1" },
        json!({ "backoffLimit": 0 }),
    ));
    with_items(docs, files)
}

/// A Job of `peakload merge` pods, created suspended, resumed once the Job before it has
/// finished (the header says how): Kubernetes has no dependency between Jobs, and a merge
/// started early would find no results. `spec` adds to its spec.
fn merge_job(
    args: &K8sRenderCli,
    name: &str,
    metadata: Value,
    component: &str,
    (merge_args, env): (Vec<String>, Vec<Value>),
    cpu: &str,
    spec: Value,
) -> Value {
    let merge = container(
        &args.image,
        component,
        merge_args,
        env,
        json!({
            // Memory does not grow with the run (the logs are read in lockstep); bench figure
            // for 100 shards × 1 h: 270 MB.
            "requests": { "cpu": cpu, "memory": "512Mi" },
            "limits": { "memory": "2Gi" },
        }),
        args.out_s3.is_none(),
    );
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "suspend": true,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": { "labels": labels(name, component) },
                "spec": pod_spec(args, name, merge, None),
            },
        },
    });
    if let (Some(into), Value::Object(more)) = (job["spec"].as_object_mut(), spec) {
        into.extend(more);
    }
    job
}

fn labels(name: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "peakload",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
    })
}

fn container(
    image: &str,
    name: &str,
    args: Vec<String>,
    env: Vec<Value>,
    resources: Value,
    results_volume: bool,
) -> Value {
    let mut mounts = vec![
        json!({ "name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true }),
        // The root filesystem is read-only: uploads to S3 are staged here.
        json!({ "name": "tmp", "mountPath": "/tmp" }),
    ];
    if results_volume {
        mounts.push(json!({ "name": "results", "mountPath": RESULTS_DIR }));
    }
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": env,
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
        "volumeMounts": mounts,
    })
}

fn pod_spec(args: &K8sRenderCli, name: &str, container: Value, spread: Option<Value>) -> Value {
    let results_volume = args.out_s3.is_none();
    let mut volumes = vec![
        json!({
            "name": "scenario",
            "configMap": { "name": format!("{name}-scenario"), "items": Value::Null },
        }),
        json!({ "name": "tmp", "emptyDir": { "sizeLimit": "1Gi" } }),
    ];
    if results_volume {
        volumes.push(json!({
            "name": "results",
            "persistentVolumeClaim": { "claimName": format!("{name}-results") },
        }));
    }
    let mut spec = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "containers": [container],
        "volumes": volumes,
    });
    if let Some(sa) = &args.service_account {
        spec["serviceAccountName"] = json!(sa);
    }
    if let Some(spread) = spread {
        spec["topologySpreadConstraints"] = spread;
    }
    spec
}

/// Fills in the ConfigMap volume's items (each key at its path under the scenario's
/// directory), once the files are known.
fn with_items(mut docs: Vec<Value>, files: &[ScenarioFile]) -> Vec<Value> {
    let items: Vec<Value> = files
        .iter()
        .map(|f| json!({ "key": f.key, "path": f.path }))
        .collect();
    for doc in &mut docs {
        if let Some(volumes) = doc
            .pointer_mut("/spec/template/spec/volumes")
            .and_then(Value::as_array_mut)
        {
            for v in volumes {
                if v.get("configMap").is_some() {
                    v["configMap"]["items"] = json!(items);
                }
            }
        }
    }
    docs
}

/// YAML from JSON values: block style, every string double-quoted (JSON's escapes are YAML's),
/// multi-line text as literal blocks when it can be written as one exactly.
pub mod yaml {
    use serde_json::Value;

    const FIRST: [&str; 7] = [
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "image",
        "spec",
        "data",
    ];

    pub fn to_string(v: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, v, 0, false);
        out
    }

    fn pad(out: &mut String, indent: usize) {
        out.extend(std::iter::repeat_n(' ', indent));
    }

    fn scalar(v: &Value, indent: usize) -> String {
        match v {
            Value::String(s) => match literal_block(s, indent) {
                Some(block) => block,
                None => serde_json::to_string(s).unwrap_or_default(),
            },
            other => other.to_string(),
        }
    }

    /// `|`-style text: only when it reads back exactly (printable, no CR, no leading space or
    /// blank first line, which would change the block's indentation).
    fn literal_block(s: &str, indent: usize) -> Option<String> {
        if !s.contains('\n')
            || s.starts_with([' ', '\n', '\t'])
            || s.chars().any(|c| {
                (c.is_control() && c != '\n') || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
            })
        {
            return None;
        }
        let trimmed = s.trim_end_matches('\n');
        let chomp = match s.len() - trimmed.len() {
            0 => "-",
            1 => "",
            _ => "+",
        };
        let body = if chomp == "+" {
            s.strip_suffix('\n')?
        } else {
            trimmed
        };
        let mut out = format!("|{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push_str(line);
            }
        }
        Some(out)
    }

    fn key(k: &str) -> String {
        if !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
            && !k.starts_with('-')
        {
            k.to_owned()
        } else {
            serde_json::to_string(k).unwrap_or_default()
        }
    }

    fn write_value(out: &mut String, v: &Value, indent: usize, in_list: bool) {
        match v {
            Value::Object(map) => {
                // Kubernetes' usual order first (serde_json's maps are sorted by key).
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by_key(|(k, _)| {
                    (FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()), *k)
                });
                for (i, (k, val)) in entries.into_iter().enumerate() {
                    if i > 0 || !in_list {
                        pad(out, indent);
                    }
                    out.push_str(&key(k));
                    out.push(':');
                    write_child(out, val, indent);
                }
            }
            Value::Array(items) => {
                for item in items {
                    pad(out, indent);
                    out.push('-');
                    match item {
                        Value::Object(m) if !m.is_empty() => {
                            out.push(' ');
                            write_value(out, item, indent + 2, true);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            out.push('\n');
                            write_value(out, item, indent + 2, false);
                        }
                        _ => {
                            out.push(' ');
                            out.push_str(&empty_or_scalar(item, indent + 2));
                            out.push('\n');
                        }
                    }
                }
            }
            other => {
                pad(out, indent);
                out.push_str(&scalar(other, indent));
                out.push('\n');
            }
        }
    }

    fn write_child(out: &mut String, val: &Value, indent: usize) {
        match val {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                write_value(out, val, indent + 2, false);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_value(out, val, indent + 2, false);
            }
            _ => {
                out.push(' ');
                out.push_str(&empty_or_scalar(val, indent));
                out.push('\n');
            }
        }
    }

    fn empty_or_scalar(v: &Value, indent: usize) -> String {
        match v {
            Value::Object(_) => "{}".into(),
            Value::Array(_) => "[]".into(),
            other => scalar(other, indent),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        #[test]
        fn nested_maps_lists_and_text() {
            let v = json!({
                "a": { "b": [1, "x: y", { "c": true, "d": [] }] },
                "text": "line 1\n  line 2\n\nend\n",
                "odd": " lead\r\n",
                "weird key": "",
            });
            let got = to_string(&v);
            let want = "a:\n  b:\n    - 1\n    - \"x: y\"\n    - c: true\n      d: []\n\
                        odd: \" lead\\r\\n\"\n\
                        text: |\n  line 1\n    line 2\n\n  end\n\
                        \"weird key\": \"\"\n";
            assert_eq!(got, want);
        }
    }
}
