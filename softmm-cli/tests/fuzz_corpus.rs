//! The fuzz targets' seed corpus, run on stable through the same entry points
//! (`softmm_cli::fuzz`) as the fuzzer: every shipped script passes, every shipped trace
//! replays with every call matched, every kept configuration builds a machine, and the
//! kept inputs under `fuzz/seeds/` give the outcome noted for them. (The differential
//! target's seeds run in `softmm/tests/model.rs`.)

use std::path::{Path, PathBuf};

use softmm_cli::fuzz;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir` (relative to the repository) whose names end in `suffix`, sorted.
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("reads the directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    out.sort();
    out
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("reads the file")
}

#[test]
fn shipped_scripts_pass() {
    let scripts: Vec<PathBuf> = [
        files("examples", ".sm"),
        files("tests/scripts", ".sm"),
        files("fuzz/seeds/script", ".sm"),
    ]
    .concat();
    assert!(scripts.len() > 100);
    for path in scripts {
        match fuzz::script(&bytes(&path)) {
            Ok(s) => assert_eq!(s.failed, 0, "{}: {s}", path.display()),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn shipped_traces_replay_with_every_call_matched() {
    let mut traces: Vec<PathBuf> = std::fs::read_dir(root().join("traces"))
        .expect("reads traces/")
        .map(|e| e.expect("a directory entry").path().join("trace"))
        .filter(|p| p.exists())
        .collect();
    traces.extend(files("fuzz/seeds/strace", ".trace"));
    assert!(traces.len() > 10);
    for path in traces {
        let (summary, skipped) = fuzz::trace(&bytes(&path)).expect("replays");
        assert!(summary.calls > 0, "{}", path.display());
        assert_eq!(summary.diverged, 0, "{}", path.display());
        assert_eq!(skipped, 0, "{}", path.display());
    }
}

#[test]
fn kept_configurations_build_a_machine() {
    for path in [
        files("fuzz/seeds/config", ".toml"),
        files("fuzz/seeds/config", ".json"),
    ]
    .concat()
    {
        if let Err(e) = fuzz::config(&bytes(&path)) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn hostile_inputs_end_in_their_errors() {
    let deep = format!(
        "munmap({}0{}, 4K)\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(
        fuzz::script(deep.as_bytes()).unwrap_err(),
        "1:264: expression nested too deeply (more than 256 levels)"
    );
    assert_eq!(
        fuzz::script(b"munmap(0x1\xff000, 4096)\n").unwrap_err(),
        "1:11: invalid UTF-8"
    );
    let s =
        fuzz::script(b"memfd_create(\"f\", 0) = $fd\npwrite64($fd, \"abc\", -1, 0) = -1 EFAULT\n")
            .expect("runs");
    assert_eq!((s.calls, s.failed), (2, 0));
    assert_eq!(
        fuzz::trace(b"no trace\n").map(|(s, skipped)| (s.calls, skipped)),
        Ok((0, 1))
    );
    assert_eq!(
        fuzz::config(b"phys_mem_bytes = 0\n").unwrap_err(),
        "phys_mem_bytes 0: must be between 2 MiB and 1024 GiB"
    );
}
