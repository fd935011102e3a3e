//! peakload: load testing and performance diagnosis.
//!
//! Data flows one way, and modules depend only on those before them in this list:
//!
//! `url` (URLs and their redaction) → `scenario` (TOML → validated model) → `plan` (schedules)
//! → `record` (HDR histograms, one aggregator, and the `results.json` contract: results,
//! infrastructure signals, findings) → `http` (the client) → `engine` (VUs) → `gate`
//! (thresholds, change detection) → `history` (recorded runs) and `observe` (infrastructure
//! sources) → `diagnose` (causes) → `output`
//! (summary, dashboard, report, JUnit, Markdown) → `cli` (clap definitions) → `cmd` (one module
//! per command; exit codes are decided there). `main` parses arguments and calls
//! [`cmd::main`]. `docs/architecture.md` draws it and says where each kind of change goes.

pub mod cli;
pub mod cmd;
pub mod diagnose;
pub mod engine;
pub mod gate;
pub mod history;
pub mod http;
pub mod observe;
pub mod output;
pub mod plan;
pub mod record;
pub mod scenario;
pub mod url;

#[cfg(test)]
mod layering {
    //! The dependency rule of `docs/architecture.md`, checked on the source: a top-level module
    //! imports only modules before it in [`ORDER`] (so there is no cycle either).

    use std::path::Path;

    const ORDER: [&str; 13] = [
        "url", "scenario", "plan", "record", "http", "engine", "gate", "history", "observe",
        "diagnose", "output", "cli", "cmd",
    ];

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "tests" || name == "tests.rs" {
                continue;
            }
            if path.is_dir() {
                sources(&path, out);
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    /// The top-level modules a file names through `crate::`, outside its unit tests.
    fn imports(text: &str) -> Vec<String> {
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let mut found = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with("::") || rest[name.len()..].starts_with(';') {
                found.push(name);
            } else if let Some(block) = rest.strip_prefix('{') {
                // `use crate::{a::X, b};`
                let block = &block[..block.find('}').unwrap_or(block.len())];
                found.extend(
                    block
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap_or("").to_string()),
                );
            }
        }
        found
    }

    #[test]
    fn modules_import_only_modules_before_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (rank, module) in ORDER.iter().enumerate() {
            let mut files = Vec::new();
            let dir = root.join(module);
            if dir.is_dir() {
                sources(&dir, &mut files);
            } else {
                files.push(root.join(format!("{module}.rs")));
            }
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for target in imports(&text) {
                    let Some(target_rank) = ORDER.iter().position(|m| *m == target) else {
                        continue;
                    };
                    if target_rank > rank {
                        wrong.push(format!("{} imports {target}", file.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layering of docs/architecture.md:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_has_a_place() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(root).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let module = name.trim_end_matches(".rs");
            if module == "lib" || module == "main" {
                continue;
            }
            assert!(
                ORDER.contains(&module),
                "src/{name} is not in the layering (src/lib.rs ORDER, docs/architecture.md)"
            );
        }
    }
}
