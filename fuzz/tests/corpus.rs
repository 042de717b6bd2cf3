//! Replays the committed corpus and every past finding (`fuzz/regressions/<target>/`) through
//! the fuzz checks on stable Rust, so a fixed crash stays fixed in `scripts/test.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 6] = [
    ("snapshot_decode", cleave_fuzz::snapshot_decode),
    ("assignments_header", cleave_fuzz::assignments_header),
    ("tokens", cleave_fuzz::tokens),
    ("decide_request", cleave_fuzz::decide_request),
    ("redirect_targets", cleave_fuzz::redirect_targets),
    ("pointer", cleave_fuzz::pointer),
];

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(outcome.is_ok(), "{target} fails on {}", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn the_corpus_and_every_past_finding_pass_every_check() {
    // Past findings (empty until the fuzzer finds something) ride along with the seeds, which
    // must be there: an empty replay would prove nothing.
    let seeds = replay("corpus");
    assert!(seeds >= 20, "the seed corpus went missing ({seeds} files)");
    replay("regressions");
}
