//! Synthetic shard outputs for the merge benchmark: what N shards of a long run would leave on a
//! shared volume, `OUT/shard-I/{results.json,latency.hlog}`, written by peakload's own recorder.
//!
//! `cargo run --release --example shard_gen -- --out DIR --shards 100 --seconds 3600 --rate 10000`
//!
//! Each shard's seconds are fed to the run's [`Aggregator`] as worker reports, exactly as the
//! engine sends them (per-step latency histograms, iterations started, bytes), so the HDR
//! interval log, the timeline and results.json come from the code a real run uses; only the
//! latencies are drawn (log-normal per step, a 1 % slow tail, 0.1 % errors) instead of
//! measured. The scenario (default `scenarios/black-friday.toml`) gives the journeys, steps and
//! weights; its load is replaced by one open stage of `rate × shards` arrivals/s.
//!
//! Drawing a shard takes a few seconds per hour of 10,000 arrivals/s, so `--distinct D` draws
//! D shards and writes the others as copies of them (results.json with its own index; the log
//! hard-linked): the merge reads N full logs either way.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use peakload::plan::shard::ShardSpec;
use peakload::plan::{ArrivalSchedule, JourneyOrder, Plan};
use peakload::record::aggregate::Aggregator;
use peakload::record::assemble::{build_results, FinishedRun};
use peakload::record::hlog::HlogWriter;
use peakload::record::results::{Results, ShardAsked, ShardInfo};
use peakload::record::{new_histogram, record_micros, Counters, Counts, ErrorKind, IntervalReport};
use peakload::scenario::{ArrivalProcess, Load, OpenLoad, RateStage};

#[derive(Parser)]
struct Args {
    /// Where the shard directories go.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "scenarios/black-friday.toml")]
    scenario: PathBuf,
    #[arg(long, default_value_t = 100)]
    shards: u32,
    /// Shards drawn; the others are copies of these.
    #[arg(long)]
    distinct: Option<u32>,
    #[arg(long, default_value_t = 3600)]
    seconds: u32,
    /// Arrivals per second per shard.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
}

fn main() {
    let args = Args::parse();
    let distinct = args.distinct.unwrap_or(args.shards).clamp(1, args.shards);
    let mut scenario =
        peakload::scenario::load_scenario(&args.scenario).unwrap_or_else(|e| panic!("{e}"));
    let plan_rate = f64::from(args.rate) * f64::from(args.shards);
    let open = OpenLoad {
        start_rps: plan_rate,
        stages: vec![RateStage {
            duration: Duration::from_secs(args.seconds.into()),
            target_rps: plan_rate,
            name: None,
        }],
        pre_allocated_vus: 100,
        max_vus: 100_000,
        max_lag: Duration::from_secs(5),
        arrivals: ArrivalProcess::Even,
    };
    scenario.load = Load::Open(open.clone());
    // One start for every shard: a --start-at an hour ago.
    let start_at = SystemTime::now() - Duration::from_secs(u64::from(args.seconds) + 60);
    std::fs::create_dir_all(&args.out).unwrap();
    let began = Instant::now();
    for index in 0..args.shards {
        let shard = ShardSpec::new(index, args.shards).unwrap();
        let dir = args.out.join(format!("shard-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let results = if index < distinct {
            draw(&scenario, &open, shard, &args, start_at, &dir)
        } else {
            let from = args.out.join(format!("shard-{}", index % distinct));
            let mut r = Results::load(&from.join("results.json")).unwrap();
            r.shard.as_mut().unwrap().index = index;
            let link = dir.join("latency.hlog");
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(from.join("latency.hlog"), &link).unwrap();
            r
        };
        results.save(&dir.join("results.json")).unwrap();
    }
    eprintln!(
        "{} shards ({distinct} drawn) x {} s at {} arrivals/s each in {:.1} s",
        args.shards,
        args.seconds,
        args.rate,
        began.elapsed().as_secs_f64()
    );
}

/// One shard, drawn second by second and recorded by the run's own aggregator.
fn draw(
    scenario: &peakload::scenario::Scenario,
    open: &OpenLoad,
    shard: ShardSpec,
    args: &Args,
    start_at: SystemTime,
    dir: &Path,
) -> Results {
    let mut rng = fastrand::Rng::with_seed(u64::from(shard.index) + 1);
    let steps: Vec<(usize, String)> = scenario
        .journeys
        .iter()
        .enumerate()
        .flat_map(|(j, journey)| {
            journey
                .steps
                .iter()
                .map(move |s| (j, format!("{}/{}", journey.name, s.name)))
        })
        .collect();
    let first_step: Vec<usize> = scenario
        .journeys
        .iter()
        .scan(0, |at, j| {
            let first = *at;
            *at += j.steps.len();
            Some(first)
        })
        .collect();
    // Each step its own typical latency, from 2 ms to about 60 ms.
    let medians: Vec<f64> = (0..steps.len())
        .map(|i| 2_000.0 * (1.0 + (i * 7 % 11) as f64 * 2.7))
        .collect();
    let order = JourneyOrder::new(
        &scenario
            .journeys
            .iter()
            .map(|j| j.weight)
            .collect::<Vec<_>>(),
    );
    let late = Duration::from_micros(rng.u64(0..20_000));
    let started = start_at + late;
    let hlog = std::fs::File::create(dir.join("latency.hlog")).unwrap();
    let writer: Box<dyn std::io::Write + Send> = Box::new(BufWriter::new(hlog));
    let run_start = Instant::now()
        .checked_sub(Duration::from_secs(args.seconds.into()))
        .unwrap_or_else(Instant::now);
    let aggregator = Aggregator::new(
        1,
        Plan::sharded(&scenario.load, shard),
        steps.iter().map(|(_, tag)| tag.clone()).collect(),
        scenario.journeys.len(),
        Some(HlogWriter::new(writer, started).unwrap()),
        run_start,
    );
    // Bounded: the drawing must not run hours ahead of the recorder.
    let (tx, rx) = mpsc::sync_channel(8);
    let recorder = std::thread::spawn(move || aggregator.run(rx));
    let rate = u64::from(args.rate);
    for second in 0..args.seconds {
        let mut report = IntervalReport {
            thread: 0,
            second,
            last: second + 1 == args.seconds,
            steps: steps.iter().map(|_| Counts::default()).collect(),
            journeys: scenario
                .journeys
                .iter()
                .map(|_| Counts::default())
                .collect(),
            counters: Counters {
                iterations_started: rate,
                bytes_in: rate * 2_400,
                bytes_out: rate * 380,
                bytes_in_decoded: rate * 5_100,
                ..Counters::default()
            },
            schedule_lag: new_histogram(),
            active_vus: (rate / 20) as u32,
            samples: Vec::new(),
            traces: Vec::new(),
        };
        for local in 0..rate {
            let k = shard.global(u64::from(second) * rate + local);
            let j = order.pick(k);
            let mut total_us = 0u64;
            let mut failed = false;
            for (step, median) in medians
                .iter()
                .enumerate()
                .skip(first_step[j])
                .take(scenario.journeys[j].steps.len())
            {
                let us = latency(&mut rng, *median);
                let c = &mut report.steps[step];
                record_micros(&mut c.latency, us);
                c.requests += 1;
                if rng.u32(0..1000) == 0 {
                    c.errors += 1;
                    c.by_kind[ErrorKind::Http5xx as usize] += 1;
                    failed = true;
                }
                total_us += us;
            }
            let c = &mut report.journeys[j];
            record_micros(&mut c.latency, total_us);
            c.requests += 1;
            c.errors += u64::from(failed);
        }
        record_micros(&mut report.schedule_lag, rng.u64(50..400));
        tx.send(report).unwrap();
    }
    drop(tx);
    let totals = recorder.join().unwrap();
    let duration = Duration::from_secs(args.seconds.into());
    let mut results = build_results(&FinishedRun {
        scenario,
        base_url: "https://shop.example.com",
        totals: &totals,
        started,
        duration,
        interrupted: false,
        threads: 1,
        cpu_s: 0.0,
    });
    let schedule = ArrivalSchedule::new(open);
    let arrivals = shard.arrivals(&schedule);
    results.shard = Some(ShardInfo {
        index: shard.index,
        count: shard.count,
        asked: ShardAsked {
            arrivals: Some(arrivals),
            plan_arrivals: Some(schedule.total_arrivals()),
            rps: Some(arrivals as f64 / duration.as_secs_f64()),
            max_vus: shard.share(u64::from(open.max_vus)) as u32,
            plan_max_vus: open.max_vus,
        },
        start_at: Some(humantime::format_rfc3339_millis(start_at).to_string()),
        late_start_ms: Some(late.as_secs_f64() * 1000.0),
    });
    results
}

/// Log-normal around `median` µs (σ 0.5), with 1 % of requests 4 to 20 times slower.
fn latency(rng: &mut fastrand::Rng, median: f64) -> u64 {
    // Box-Muller; 1 - U keeps the logarithm finite.
    let z = (-2.0 * (1.0 - rng.f64()).ln()).sqrt() * (std::f64::consts::TAU * rng.f64()).cos();
    let mut us = median * (0.5 * z).exp();
    if rng.u32(0..100) == 0 {
        us *= 4.0 + 16.0 * rng.f64();
    }
    us as u64
}
