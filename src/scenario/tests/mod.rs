//! The scenario compiler's tests, one module per section of the file, and the fixtures they
//! share: a scenario in a fresh directory with its data files, a fixed environment, and
//! parsing that returns the errors as text.

mod checks;
mod feeders;
mod gate;
mod journeys;
mod limits;
mod load;
mod observe;
mod thresholds;
mod top;
mod values;

use std::path::{Path, PathBuf};

use super::*;

/// A scenario file in a fresh directory, with its data files.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Dir { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("scenario.toml")
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "API_KEY" => Some("k\"1".to_string()),
        "HOST" => Some("http://10.0.0.1:9000/".to_string()),
        "COUNT" => Some("7".to_string()),
        _ => None,
    }
}

fn parse_in(dir: &Dir, src: &str) -> Result<Scenario, ScenarioErrors> {
    parse_scenario(src, &dir.path(), &env)
}

fn parse(src: &str) -> Result<Scenario, ScenarioErrors> {
    parse_scenario(src, Path::new("s.toml"), &env)
}

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

fn one_error(src: &str) -> String {
    let e = errors(src);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

const USERS_CSV: &str = "email,password\na@x.io,pw1\nb@x.io,\"p,w2\"\n";
