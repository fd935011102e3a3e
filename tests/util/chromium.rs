//! Real headless Chromium (Debian's `chromium`): a page's DOM after its scripts ran, its
//! console errors, and a screenshot's pixels. Each call uses a fresh profile.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::run_within;

pub const CHROMIUM: &str = "/usr/bin/chromium";

const LIMIT: Duration = Duration::from_secs(90);

pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    );
}

fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

fn file_url(page: &Path) -> String {
    format!("file://{}", page.canonicalize().unwrap().display())
}

/// What the browser made of a page: its DOM after scripts, and console errors.
pub struct Rendered {
    pub dom: String,
    pub console_errors: Vec<String>,
}

pub fn render(page: &Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = chromium(profile.path());
    cmd.args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(file_url(page));
    let o = run_within(cmd, LIMIT);
    let console_errors = o
        .stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || (l.contains(":CONSOLE") && l.contains("rror")))
        .map(str::to_string)
        .collect();
    Rendered {
        dom: o.stdout,
        console_errors,
    }
}

/// Takes a 1280-wide screenshot into `png_path`; returns the luminance variance and the
/// number of distinct colours of its pixels (a blank page has variance ~0 and one colour).
pub fn screenshot(page: &Path, png_path: &Path) -> (f64, usize) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = chromium(profile.path());
    cmd.args([
        "--hide-scrollbars",
        "--window-size=1280,2200",
        &format!("--screenshot={}", png_path.display()),
    ])
    .arg(file_url(page));
    let o = run_within(cmd, LIMIT);
    assert!(
        png_path.exists(),
        "no screenshot: {}\n{}",
        o.stdout,
        o.stderr
    );
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(info.width >= 1000 && info.height >= 1000, "{info:?}");
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sum_sq, mut n) = (0.0, 0.0, 0.0);
    for px in bytes.chunks_exact(channels) {
        let (r, g, b) = (px[0] as f64, px[1] as f64, px[2] as f64);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        sum += y;
        sum_sq += y * y;
        n += 1.0;
        if colours.len() < 10_000 {
            colours.insert((px[0], px[1], px[2]));
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean, colours.len())
}
