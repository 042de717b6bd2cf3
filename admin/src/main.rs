//! cleave-admin: the control plane. This build validates snapshot files; experiments in
//! Postgres, compile and publish arrive with the control-plane work.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cleave_core::{Engine, SnapshotError};

#[derive(Debug, Parser)]
#[command(name = "cleave-admin", version, about = "cleave's control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check snapshot files against the v1 contract and list every problem.
    Validate {
        /// Snapshot JSON files (e.g. config-snapshots/demo.json).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => {
            let mut ok = true;
            for file in &files {
                match validate(file) {
                    Ok(summary) => println!("{}: ok ({summary})", file.display()),
                    Err(report) => {
                        ok = false;
                        eprintln!("{}: {report:#}", file.display());
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Validates one file; the error lists every problem, one per line.
fn validate(file: &PathBuf) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    match Engine::decode(&bytes) {
        Ok(engine) => {
            let s = engine.snapshot();
            Ok(format!(
                "environment {}, version {}, {} experiments",
                s.environment,
                s.version,
                s.experiments.len()
            ))
        }
        Err(SnapshotError::Invalid(problems)) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            anyhow::bail!("{} problems:\n{}", problems.len(), lines.join("\n"))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_checked_in_snapshots_are_valid() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in [
            "config-snapshots/demo.json",
            "tests/fixtures/assignment-snapshot.json",
        ] {
            let summary = validate(&root.join(file)).unwrap();
            assert!(summary.contains("version"), "{summary}");
        }
    }

    #[test]
    fn an_invalid_file_lists_every_problem() {
        let dir = std::env::temp_dir().join(format!("cleave-admin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.json");
        std::fs::write(
            &file,
            r#"{"schema":1,"environment":"x","version":1,"published_at":"t","published_by":"t",
               "experiments":[{"id":"e","key":"Bad","status":"running","traffic":-1,"variants":[]}]}"#,
        )
        .unwrap();
        let report = format!("{:#}", validate(&file).unwrap_err());
        assert!(report.starts_with("3 problems:"), "{report}");
        assert!(report.contains("experiments[0].key"));
        assert!(report.contains("experiments[0].traffic"));
        assert!(report.contains("experiments[0].variants: experiment has no variants"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
