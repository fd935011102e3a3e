//! The scenario compiler on any text: errors, never a panic; a scenario it accepts can be
//! planned and described as `check` does.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: feeder files are never read from the fuzzing machine.
    let path = Path::new("/nonexistent/peakload-fuzz/scenario.toml");
    if let Ok(s) = peakload::scenario::parse_scenario(src, path, &|_| None) {
        let _ = peakload::cmd::check::describe_plan(&s);
        let plan = peakload::plan::Plan::new(&s.load);
        let _ = plan.target_in_second(0);
    }
});
