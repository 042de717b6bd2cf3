//! `cleave-admin validate`: checks snapshot files with the same code the worker runs.

use std::path::{Path, PathBuf};

use cleave_core::{Engine, SnapshotError};

use crate::error::{AdminError, Result};

/// Validates each file, printing a line per file; fails if any is invalid.
///
/// # Errors
/// [`AdminError::Invalid`]-class failure when a file is unreadable or breaks the contract.
pub fn files(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for file in files {
        match file_summary(file) {
            Ok(summary) => println!("{}: ok ({summary})", file.display()),
            Err(report) => {
                failed += 1;
                eprintln!("{}: {report}", file.display());
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(AdminError::BadRequest(format!(
            "{failed} of {} files are invalid",
            files.len()
        )))
    }
}

/// One file's summary, or every problem, one per line.
pub fn file_summary(file: &Path) -> std::result::Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
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
            Err(format!(
                "{} problems:\n{}",
                problems.len(),
                lines.join("\n")
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_snapshots_are_valid() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in [
            "config-snapshots/demo.json",
            "tests/fixtures/assignment-snapshot.json",
        ] {
            let summary = file_summary(&root.join(file)).unwrap();
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
        let report = file_summary(&file).unwrap_err();
        assert!(report.starts_with("3 problems:"), "{report}");
        assert!(report.contains("experiments[0].key"));
        assert!(report.contains("experiments[0].traffic"));
        assert!(report.contains("experiments[0].variants: experiment has no variants"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
