//! Replays the checked-in fuzz corpora (`fuzz/corpus/<target>/`) and reproducers of fixed bugs
//! (`fuzz/regressions/<target>/`) through the same property checks the fuzzers run.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of one corpus folder, sorted so failures are reported in a stable order.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in easyauth_fuzzing::TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        assert!(
            !inputs(&dir).is_empty(),
            "{} has no inputs: a target without seeds is not replayed",
            dir.display()
        );
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
    }
}

#[test]
fn corpora_and_regressions_replay() {
    for (name, check) in easyauth_fuzzing::TARGETS {
        let started = Instant::now();
        let mut count = 0;
        for kind in ["corpus", "regressions"] {
            for file in inputs(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).expect("corpus files are readable");
                let outcome = std::panic::catch_unwind(|| check(&data));
                assert!(
                    outcome.is_ok(),
                    "{name}: {} fails its properties (reproduce with `cargo xtask fuzz --target {name}` \
                     or this test)",
                    file.display()
                );
                count += 1;
            }
        }
        println!(
            "{name}: {count} inputs in {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}
