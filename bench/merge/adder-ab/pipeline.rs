// The per-line work of `peakload merge` with two versions of `src/record/adder.rs` side by side:
// every interval line of the given shard logs is added into its second's sum by tag, and each
// second's sums are finished and encoded as the merge writes them. Single-threaded, on lines
// already in memory, so it measures decoding and adding only (no file reading, no threads).
// Built and run by adder_ab.sh.
use std::collections::BTreeMap;
use std::time::Instant;

fn split(line: &str) -> Option<(Option<String>, u32, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('"') {
        return None;
    }
    let (tag, rest) = match line.strip_prefix("Tag=") {
        Some(r) => {
            let (t, r) = r.split_once(',')?;
            (Some(t.to_string()), r)
        }
        None => (None, line),
    };
    let mut f = rest.splitn(4, ',');
    let start: f64 = f.next()?.parse().ok()?;
    f.next();
    f.next();
    Some((tag, start.round() as u32, f.next()?))
}

/// CPU seconds of this thread (clock ticks of 10 ms).
fn cpu() -> f64 {
    let st = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let f: Vec<&str> = st.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

macro_rules! run {
    ($m:ident, $by_sec:expr) => {{
        let mut d = adder_ab::$m::Decoder::default();
        let mut out = 0usize;
        for lines in $by_sec.values() {
            let mut sums: BTreeMap<Option<String>, adder_ab::$m::Adder> = BTreeMap::new();
            for (tag, h) in lines {
                sums.entry(tag.clone()).or_default().add_encoded(h, &mut d).unwrap();
            }
            for (_, a) in sums {
                out += adder_ab::results::encode_histogram(&a.finish()).len();
            }
        }
        out
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, repeat) = (&args[1], args[2].parse::<usize>().expect("REPEAT"));
    let texts: Vec<String> = args[3..]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut by_sec: BTreeMap<u32, Vec<(Option<String>, &str)>> = BTreeMap::new();
    for t in &texts {
        for (tag, s, h) in t.lines().filter_map(split) {
            for _ in 0..repeat {
                by_sec.entry(s).or_default().push((tag.clone(), h));
            }
        }
    }
    let n: usize = by_sec.values().map(Vec::len).sum();
    let (c0, t0) = (cpu(), Instant::now());
    let out = if which == "old" { run!(old, by_sec) } else { run!(new, by_sec) };
    let (c, wall) = (cpu() - c0, t0.elapsed().as_secs_f64());
    println!(
        "{which}: {n} line additions, {:.1} CPU-us/line ({c:.2} CPU-s, {wall:.2} s wall), {out} bytes out",
        c * 1e6 / n as f64
    );
}
