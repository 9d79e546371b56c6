//! Hostile scripts for `softmm run`: each ends with exit 1 or 2 and a message that names its
//! line (and column), never with a crash, an endless read or an allocation of what the
//! script asks for.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// Writes `bytes` to a file of this test run.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("writes the file");
    path
}

fn run(path: &PathBuf) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softmm"))
        .arg("run")
        .arg(path)
        .output()
        .expect("runs softmm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `script` and checks a malformed-script exit: status 2, nothing on stdout, and
/// `FILE:LOCATION: message` on stderr.
#[track_caller]
fn malformed(name: &str, script: &[u8], location_and_message: &str) {
    let path = file(name, script);
    let out = run(&path);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!("{}:{location_and_message}\n", path.display())
    );
}

mod nesting {
    use super::*;

    #[test]
    fn ten_thousand_parentheses_stop_at_the_limit() {
        let s = format!(
            "munmap({}0{}, 4K)\n",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        // The 257th '(' (column 8 + 256) is one level too many.
        malformed(
            "deep-parens.sm",
            s.as_bytes(),
            "1:264: expression nested too deeply (more than 256 levels)",
        );
    }

    #[test]
    fn thirty_thousand_signs_stop_at_the_limit() {
        let s = format!("munmap({}0, 4K)\n", "-".repeat(30_000));
        malformed(
            "deep-signs.sm",
            s.as_bytes(),
            "1:264: expression nested too deeply (more than 256 levels)",
        );
    }

    #[test]
    fn a_flat_sum_of_fifty_thousand_terms_stops_at_the_limit() {
        let s = format!("munmap({}, 4K)\n", vec!["0"; 50_000].join("+"));
        // A number is one level and each '+' adds one to the left-deep tree, so the 256th
        // '+' (column 7 + 2*256) makes it 257 levels deep.
        malformed(
            "flat-sum.sm",
            s.as_bytes(),
            "1:519: expression nested too deeply (more than 256 levels)",
        );
    }

    #[test]
    fn the_limit_itself_is_allowed() {
        let s = format!(
            "munmap({}0x1000{}, 4096) = 0\nmunmap({}, 4096) = 0\n",
            "(".repeat(256),
            ")".repeat(256),
            vec!["16"; 256].join("+")
        );
        let path = file("deep-ok.sm", s.as_bytes());
        let out = run(&path);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).ends_with("2 calls, 2 expectations, 0 failed\n"));
    }
}

mod pwrite_lengths {
    use super::*;

    const FD: &str = "memfd_create(\"f\", 0) = $fd\n";

    /// Runs `FD` then `lines` and returns stdout, which must end in a passing summary.
    #[track_caller]
    fn passes(name: &str, lines: &str) -> String {
        let path = file(name, format!("{FD}{lines}").as_bytes());
        let out = run(&path);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        stdout
    }

    #[test]
    fn a_count_of_minus_one_is_efault() {
        passes(
            "pwrite-minus-one.sm",
            "pwrite64($fd, \"abc\", -1, 0) = -1 EFAULT\n",
        );
    }

    #[test]
    fn a_140_tb_count_is_efault() {
        passes(
            "pwrite-140tb.sm",
            "pwrite64($fd, \"abc\", 0x7fffffffffff, 0) = -1 EFAULT\n",
        );
    }

    #[test]
    fn a_2g_count_over_a_3_byte_string_is_efault() {
        passes(
            "pwrite-2g.sm",
            "pwrite64($fd, \"abc\", 2G, 0) = -1 EFAULT\n",
        );
    }

    #[test]
    fn counts_from_an_address_are_checked_and_capped() {
        passes(
            "pwrite-addr.sm",
            "mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $a\n\
             poke($a+8K-2, \"yz\") = 2\n\
             pwrite64($fd, $a, 0x7fffffffffff, 0) = -1 EFAULT\n\
             pwrite64($fd, $a, -1, 0) = -1 EFAULT\n\
             pwrite64($fd, $a, 2G, 0) = -1 EFAULT\n\
             pwrite64($fd, $a+8K, 1, 0) = -1 EFAULT\n\
             pwrite64($fd, $a, 3*4K, 0) = 8192\n\
             mmap(NULL, 8K, PROT_READ, MAP_SHARED, $fd, 0) = $m\n\
             peek($m+8K-2, 2) = \"yz\"\n",
        );
    }

    #[test]
    fn the_descriptor_is_checked_before_the_buffer() {
        passes(
            "pwrite-ebadf.sm",
            "pwrite64(99, \"abc\", -1, 0) = -1 EBADF\n\
             pwrite64($fd, \"abc\", -1, -1) = -1 EINVAL\n\
             openat(AT_FDCWD, \"ro\", O_RDONLY|O_CREAT, 0600) = $ro\n\
             pwrite64($ro, \"abc\", -1, 0) = -1 EBADF\n",
        );
    }

    #[test]
    fn a_short_count_writes_a_prefix_and_a_padded_one_zeros() {
        let out = passes(
            "pwrite-prefix.sm",
            "pwrite64($fd, \"abcdef\", 2, 0) = 2\n\
             pwrite64($fd, \"xy\", 4, 2) = 4\n\
             mmap(NULL, 4K, PROT_READ, MAP_SHARED, $fd, 0) = $m\n\
             peek($m, 7) = \"abxy\\0\\0\\0\"\n",
        );
        assert!(out.contains("= 4\n"), "{out}");
    }
}

mod input_limits {
    use super::*;

    #[test]
    fn dev_zero_is_refused_at_its_first_line() {
        let out = Command::new(env!("CARGO_BIN_EXE_softmm"))
            .args(["run", "/dev/zero"])
            .output()
            .expect("runs softmm");
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "/dev/zero:1: line longer than 1048576 bytes\n"
        );
    }

    #[test]
    fn a_script_over_16_mib_is_refused() {
        let line = "munmap(0x1000, 4096)\n";
        let s = line.repeat((16 << 20) / line.len() + 1);
        let path = file("huge.sm", s.as_bytes());
        let out = run(&path);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "softmm: {}: input larger than 16777216 bytes (the limit for this input)\n",
                path.display()
            )
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        malformed(
            "bad-utf8.sm",
            b"munmap(0x1000, 4096) = -1 EINVAL\nmunmap(0x1\xff000, 4096)\n",
            "2:11: invalid UTF-8",
        );
    }

    #[test]
    fn a_nul_after_a_binding_is_unexpected_text() {
        malformed(
            "nul.sm",
            b"mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $a\0\n",
            "1:67: unexpected text '\\u{0}'",
        );
    }

    #[test]
    fn a_nul_inside_a_call_is_shown_escaped() {
        malformed(
            "nul-arg.sm",
            b"munmap(\0, 4096)\n",
            "1:8: expected a value, found '\\u{0}'",
        );
    }
}

mod processes {
    use super::*;

    #[test]
    fn twenty_thousand_forks_stop_at_64_processes() {
        let path = file("forks.sm", "fork()\n".repeat(20_000).as_bytes());
        let out = run(&path);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        // pid 1 and 63 children; every later fork fails as at RLIMIT_NPROC.
        assert_eq!(stdout.matches("fork() = -1 EAGAIN").count(), 20_000 - 63);
        assert!(stdout.ends_with("20000 calls, 0 expectations, 0 failed\n"));
    }

    #[test]
    fn an_exited_process_frees_its_place() {
        let mut s = "fork()\n".repeat(63);
        s.push_str("fork() = -1 EAGAIN\n$c exit_group(0)\nfork() = $d\n");
        let s = format!("fork() = $c\n{s}");
        let path = file("fork-exit.sm", s.as_bytes());
        let out = run(&path);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
}
