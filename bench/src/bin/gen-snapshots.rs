//! Writes the benchmark snapshots: `gen-snapshots DIR N...` -> DIR/bench-N.json.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: gen-snapshots DIR N..."));
    std::fs::create_dir_all(&dir).unwrap();
    for n in args {
        let n: usize = n.parse().expect("N must be a number");
        let path = dir.join(format!("bench-{n}.json"));
        std::fs::write(
            &path,
            serde_json::to_vec(&cleave_bench::snapshot_json(n)).unwrap(),
        )
        .unwrap();
        eprintln!("wrote {}", path.display());
    }
}
