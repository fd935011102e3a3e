//! Python reads what peakload writes, the way other tools would: `results.json` against the
//! committed JSON Schema (`jsonschema`), the HDR histograms and log (`hdrhistogram`), the JUnit
//! XML (`junitparser`). The packages are in `tests/requirements.txt` (`scripts/test` installs
//! them); without Python or a package the test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::run_within;

const INSTALL: &str = "python3 -m pip install -r tests/requirements.txt";

/// Exit status of the preamble when a module is missing.
const MISSING: i32 = 97;

/// Runs `script` (`sys.argv[1..]` = `args`) after importing `modules`; returns whether it
/// exited 0 and its stdout (with its stderr after it when it exited 1: a verdict, or an
/// exception). Any other exit fails the test.
pub fn python(modules: &[&str], script: &str, args: &[&Path]) -> (bool, String) {
    let preamble = format!(
        "import sys\ntry:\n    import {}\nexcept ImportError as e:\n    print(f'missing Python package: {{e}}', file=sys.stderr)\n    sys.exit({MISSING})\n",
        modules.join(", ")
    );
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(format!("{preamble}{script}")).args(args);
    let out = run_within(cmd, Duration::from_secs(60));
    if out.code == MISSING {
        panic!(
            "{}these tests need the Python packages: {INSTALL}",
            out.stderr
        );
    }
    if out.code != 0 && out.code != 1 {
        panic!(
            "python script failed (exit {}; these tests need Python 3 and `{INSTALL}`): {}\n{}",
            out.code, out.stderr, out.stdout
        );
    }
    if out.code == 0 {
        (true, out.stdout)
    } else {
        (false, out.stdout + &out.stderr)
    }
}

/// Fails the test now, before any work, when Python or one of `modules` is missing.
pub fn require(modules: &[&str]) {
    python(modules, "", &[]);
}

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/results.schema.json")
}

const VALIDATE: &str = r#"
import json
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
V = jsonschema.Draft202012Validator
V.check_schema(schema)
errors = list(V(schema, format_checker=V.FORMAT_CHECKER).iter_errors(doc))
for e in errors:
    print(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
sys.exit(1 if errors else 0)
"#;

/// The schema's verdict on a results file: `Ok` or the list of violations.
pub fn schema_verdict(results: &Path) -> Result<(), String> {
    match python(&["jsonschema"], VALIDATE, &[&schema_path(), results]) {
        (true, _) => Ok(()),
        (false, errors) => Err(errors),
    }
}

#[track_caller]
pub fn assert_valid_results(results: &Path) {
    if let Err(errors) = schema_verdict(results) {
        panic!(
            "{} does not match reports/schema/results.schema.json:\n{errors}",
            results.display()
        );
    }
}

const JUNIT_CASES: &str = r#"
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print(f"suite|{suite.name}|{suite.tests}|{suite.failures}")
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        msg = failures[0].message if failures else ""
        print(f"case|{case.name}|{case.is_passed}|{msg}")
"#;

/// Reads a JUnit file with junitparser; returns one line per suite
/// (`suite|name|tests|failures`) followed by one per test case (`case|name|passed|message`).
pub fn junit_cases(path: &Path) -> Vec<String> {
    let (ok, out) = python(&["junitparser"], JUNIT_CASES, &[path]);
    assert!(ok, "junitparser could not read {}: {out}", path.display());
    out.lines().map(str::to_string).collect()
}
