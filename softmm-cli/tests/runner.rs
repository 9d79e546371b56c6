//! The executor against a fake backend that answers from a list: the output must be the
//! text linux-run prints for the same script and the same results (the transcripts below were
//! taken from `shared/tools/linux-run` on this machine, with its `# linux-run: ...` line
//! dropped and its fork pid replaced by 2).

use std::collections::VecDeque;

use softmm_cli::script::{Backend, Buf, Call, Outcome, Pid, Summary, parse_script, run_script};

/// Answers each call with the next outcome of its list and records what it was asked.
#[derive(Default)]
struct Fake {
    answers: VecDeque<Outcome>,
    calls: Vec<(Pid, Call)>,
}

impl Fake {
    fn new(answers: impl IntoIterator<Item = Outcome>) -> Self {
        Self {
            answers: answers.into_iter().collect(),
            calls: Vec::new(),
        }
    }
}

impl Backend for Fake {
    fn call(&mut self, pid: Pid, call: &Call) -> Outcome {
        self.calls.push((pid, call.clone()));
        self.answers
            .pop_front()
            .unwrap_or_else(|| panic!("no answer left for {call:?}"))
    }
}

fn run(text: &str, backend: &mut Fake, quiet: bool) -> (String, Summary) {
    let script = parse_script(text).expect("the script parses");
    let mut out = Vec::new();
    let summary = run_script(&script, backend, quiet, &mut out).expect("writes to a Vec");
    (String::from_utf8(out).expect("utf-8 output"), summary)
}

const B: u64 = 0x7fff_f76f_9000;
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;

const FAILING: &str = r#"mmap(0x1000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0) = $a
munmap($a, 4096) = 0
7 munmap(0x1000, 4096) = 0
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $b
peek($b, 2) = $h
munmap($h, 1)
$h munmap(1, 1)
poke($b, 5)
peek($b, 3) = "ab"
vmflags($b) = "rd"
fork() = $c
$c exit_group(3)
$c munmap($b, 1) = 0
peek($b, 17M)
count($b, 4096, 0) = 4096
munmap($b, 4096) = -1
munmap($b+1, 4096) = -1
munmap($b+1, 4096) = 5
smaps($b, "Rss") = 0
smaps($b, "VmFlags")
smaps($b, "Nope")
"#;

fn failing_answers() -> Vec<Outcome> {
    vec![
        Outcome::Int(0x1000),
        Outcome::Int(0),
        Outcome::Int(B),
        Outcome::Bytes(vec![0, 0]),
        Outcome::Bytes(vec![0, 0, 0]),
        Outcome::Text("rd wr mr mw me ac".into()),
        Outcome::Int(2),
        Outcome::Exit,
        Outcome::Int(4096),
        Outcome::Int(0),
        Outcome::Err(EINVAL),
        Outcome::Err(EINVAL),
        Outcome::Err(ENOMEM),
        Outcome::Err(ENOMEM),
        Outcome::Err(ENOMEM),
    ]
}

const FAILING_OUT: &str = r#"mmap(0x1000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0) = 0x1000
munmap(0x1000, 4096) = 0
[pid 7] munmap(...) = -1 ESRCH (No such process)
FAIL line 3: no process with pid 7
mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff76f9000
peek(0x7ffff76f9000, 2) = "\0\0"
munmap("\0\0", 1) = ?
FAIL line 6: argument 1 of munmap must be an integer
[pid ?] munmap(...) = ?
FAIL line 7: a byte string is used in arithmetic
poke(0x7ffff76f9000, 5) = ?
FAIL line 8: poke data must be a string
peek(0x7ffff76f9000, 3) = "\0\0\0"
FAIL line 9: expected "ab", got "\0\0\0"
vmflags(0x7ffff76f9000) = "rd wr mr mw me ac"
FAIL line 10: expected "rd", got "rd wr mr mw me ac"
fork() = 2
[pid 2] exit_group(3) = ?
[pid 2] munmap(0x7ffff76f9000, 1) = -1 ESRCH (No such process)
FAIL line 13: expected 0, got -1 ESRCH (No such process)
peek(0x7ffff76f9000, 17825792) = ?
FAIL line 14: peek of more than 16777216 bytes
count(0x7ffff76f9000, 4096, 0x0) = 4096
munmap(0x7ffff76f9000, 4096) = 0
FAIL line 16: expected -1, got 0
munmap(0x7ffff76f9001, 4096) = -1 EINVAL (Invalid argument)
munmap(0x7ffff76f9001, 4096) = -1 EINVAL (Invalid argument)
FAIL line 18: expected 5, got -1 EINVAL (Invalid argument)
smaps(0x7ffff76f9000, "Rss") = -1 ENOMEM (Cannot allocate memory)
FAIL line 19: expected 0, got -1 ENOMEM (Cannot allocate memory)
smaps(0x7ffff76f9000, "VmFlags") = -1 ENOMEM (Cannot allocate memory)
smaps(0x7ffff76f9000, "Nope") = -1 ENOMEM (Cannot allocate memory)
21 calls, 14 expectations, 11 failed
"#;

const FAILING_QUIET: &str = r#"[pid 7] munmap(...) = -1 ESRCH (No such process)
FAIL line 3: no process with pid 7
munmap("\0\0", 1) = ?
FAIL line 6: argument 1 of munmap must be an integer
[pid ?] munmap(...) = ?
FAIL line 7: a byte string is used in arithmetic
poke(0x7ffff76f9000, 5) = ?
FAIL line 8: poke data must be a string
peek(0x7ffff76f9000, 3) = "\0\0\0"
FAIL line 9: expected "ab", got "\0\0\0"
vmflags(0x7ffff76f9000) = "rd wr mr mw me ac"
FAIL line 10: expected "rd", got "rd wr mr mw me ac"
[pid 2] munmap(0x7ffff76f9000, 1) = -1 ESRCH (No such process)
FAIL line 13: expected 0, got -1 ESRCH (No such process)
peek(0x7ffff76f9000, 17825792) = ?
FAIL line 14: peek of more than 16777216 bytes
munmap(0x7ffff76f9000, 4096) = 0
FAIL line 16: expected -1, got 0
munmap(0x7ffff76f9001, 4096) = -1 EINVAL (Invalid argument)
FAIL line 18: expected 5, got -1 EINVAL (Invalid argument)
smaps(0x7ffff76f9000, "Rss") = -1 ENOMEM (Cannot allocate memory)
FAIL line 19: expected 0, got -1 ENOMEM (Cannot allocate memory)
21 calls, 14 expectations, 11 failed
"#;

#[test]
fn failures_are_reported_as_linux_run_reports_them() {
    let mut fake = Fake::new(failing_answers());
    let (out, summary) = run(FAILING, &mut fake, false);
    assert_eq!(out, FAILING_OUT);
    assert_eq!(
        summary,
        Summary {
            calls: 21,
            expectations: 14,
            failed: 11
        }
    );
    assert_eq!(summary.exit_code(), 1);
    assert!(fake.answers.is_empty());
}

#[test]
fn quiet_prints_only_failures() {
    let mut fake = Fake::new(failing_answers());
    let (out, _) = run(FAILING, &mut fake, true);
    assert_eq!(out, FAILING_QUIET);
}

#[test]
fn the_backend_sees_typed_calls_in_their_process() {
    let mut fake = Fake::new(failing_answers());
    run(FAILING, &mut fake, true);
    let calls = &fake.calls;
    assert_eq!(
        calls[0],
        (
            1,
            Call::Mmap {
                addr: 0x1000,
                len: 4096,
                prot: 1,
                flags: 0x100022,
                fd: u64::MAX,
                off: 0
            }
        )
    );
    assert_eq!(calls[6], (1, Call::Fork));
    assert_eq!(calls[7], (2, Call::ExitGroup { code: 3 }));
    // The call in the exited child never reached the backend, nor did the refused peek.
    assert_eq!(
        calls[8],
        (
            1,
            Call::Count {
                addr: B,
                len: 4096,
                byte: 0
            }
        )
    );
    assert_eq!(calls.len(), 15);
}

fn passing_answers() -> Vec<Outcome> {
    vec![
        Outcome::Int(0x7fff_f7ff_d000),
        Outcome::Text("rw-p 12288".into()),
        Outcome::Int(5),
        Outcome::Bytes(b"\0\0hello\0".to_vec()),
        Outcome::Int(0),
        Outcome::Signal(11),
        Outcome::Err(EINVAL),
        Outcome::Int(0),
        Outcome::Text("rd wr mr mw me ac".into()),
        Outcome::Int(0x7fff_f000_0000),
        Outcome::Int(0x7fff_f000_0000),
    ]
}

#[test]
fn a_passing_run() {
    let text = r#"# comment
mmap(NULL, 3*4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $p
layout($p, 3*4K) = "rw-p 12288"
poke($p+4K+10, "hello") = 5
peek($p+4K+8, 8) = "\0\0hello\0"
mprotect($p, 4K, PROT_NONE) = 0
peek($p, 1) = SIGSEGV
munmap($p, 0) = -1 EINVAL (Invalid argument)
madvise($p, 4K, MADV_WILLNEED)
vmflags($p+4K) = "ac me mw mr wr rd"
mremap($p, 3*4K, 4*4K, MREMAP_MAYMOVE) = $q
mmap($q, 4K, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = $q
"#;
    let mut fake = Fake::new(passing_answers());
    let (out, summary) = run(text, &mut fake, false);
    assert_eq!(
        out,
        r#"mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7ffd000
layout(0x7ffff7ffd000, 12288) = "rw-p 12288"
poke(0x7ffff7ffe00a, "hello") = 5
peek(0x7ffff7ffe008, 8) = "\0\0hello\0"
mprotect(0x7ffff7ffd000, 4096, PROT_NONE) = 0
peek(0x7ffff7ffd000, 1) = SIGSEGV
munmap(0x7ffff7ffd000, 0) = -1 EINVAL (Invalid argument)
madvise(0x7ffff7ffd000, 4096, MADV_WILLNEED) = 0
vmflags(0x7ffff7ffe000) = "rd wr mr mw me ac"
mremap(0x7ffff7ffd000, 12288, 16384, MREMAP_MAYMOVE) = 0x7ffff0000000
mmap(0x7ffff0000000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x7ffff0000000
11 calls, 10 expectations, 0 failed
"#
    );
    assert_eq!(summary.exit_code(), 0);
    let (quiet, _) = run(text, &mut Fake::new(passing_answers()), true);
    assert_eq!(quiet, "11 calls, 10 expectations, 0 failed\n");
}

#[test]
fn maps_prints_its_text_without_a_result() {
    let text = "maps()\nsmaps()\nmunmap(0x1000, 4096) = 0\n";
    let maps = "00400000-00401000 r--p 00000000 00:00 0 \n";
    let mut fake = Fake::new([
        Outcome::Print(maps.into()),
        Outcome::Print("smaps text\n".into()),
        Outcome::Int(0),
    ]);
    let (out, summary) = run(text, &mut fake, false);
    assert_eq!(
        out,
        format!(
            "maps()\n{maps}smaps()\nsmaps text\nmunmap(0x1000, 4096) = 0\n3 calls, 1 expectations, 0 failed\n"
        )
    );
    assert_eq!(fake.calls[1], (1, Call::SmapsAll));
    assert_eq!(summary.failed, 0);
    let mut fake = Fake::new([
        Outcome::Print(maps.into()),
        Outcome::Print("smaps text\n".into()),
        Outcome::Int(0),
    ]);
    let (quiet, _) = run(text, &mut fake, true);
    assert_eq!(quiet, "3 calls, 1 expectations, 0 failed\n");
}

#[test]
fn a_failed_bind_leaves_the_variable_unbound() {
    let text = "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0) = $m\nmunmap($m, 4096) = 0\npeek(0x1000, 2) = SIGSEGV\n";
    let mut fake = Fake::new([Outcome::Err(ENOMEM), Outcome::Signal(11)]);
    let (out, summary) = run(text, &mut fake, false);
    assert_eq!(
        out,
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0) = -1 ENOMEM (Cannot allocate memory)\n\
         FAIL line 1: expected a value for $m, got -1 ENOMEM (Cannot allocate memory)\n\
         munmap(...) = ?\n\
         FAIL line 2: $m is unbound (the line that binds it failed)\n\
         peek(0x1000, 2) = SIGSEGV\n\
         3 calls, 3 expectations, 2 failed\n"
    );
    assert_eq!(summary.exit_code(), 1);
}

#[test]
fn an_unsupported_call_fails_its_line_whatever_it_expects() {
    let text = "memfd_create(\"x\", MFD_CLOEXEC) = $fd\nfork()\nclose(3) = ?\n";
    let mut fake = Fake::new([
        Outcome::Error("memfd_create is not supported yet".into()),
        Outcome::Error("fork is not supported yet".into()),
        Outcome::Error("close is not supported yet".into()),
    ]);
    let (out, summary) = run(text, &mut fake, true);
    assert_eq!(
        out,
        "memfd_create(\"x\", MFD_CLOEXEC) = ?\n\
         FAIL line 1: memfd_create is not supported yet\n\
         fork() = ?\n\
         FAIL line 2: fork is not supported yet\n\
         close(3) = ?\n\
         FAIL line 3: close is not supported yet\n\
         3 calls, 1 expectations, 3 failed\n"
    );
    assert_eq!(summary.exit_code(), 1);
}

#[test]
fn bytes_in_variables_are_data_and_results() {
    let text = r#"peek(0x1000, 3) = $head
poke(0x2000, $head) = 3
peek(0x2000, 3) = $head
peek(0x3000, 3) = $head
pwrite64(3, "ab", 4, 0x10)
"#;
    let mut fake = Fake::new([
        Outcome::Bytes(b"a\tb".to_vec()),
        Outcome::Int(3),
        Outcome::Bytes(b"a\tb".to_vec()),
        Outcome::Bytes(b"xyz".to_vec()),
        Outcome::Int(4),
    ]);
    let (out, summary) = run(text, &mut fake, false);
    assert_eq!(
        out,
        r#"peek(0x1000, 3) = "a\tb"
poke(0x2000, "a\tb") = 3
peek(0x2000, 3) = "a\tb"
peek(0x3000, 3) = "xyz"
FAIL line 4: expected $head = "a\tb", got "xyz"
pwrite64(3, "ab", 4, 16) = 4
5 calls, 4 expectations, 1 failed
"#
    );
    assert_eq!(summary.failed, 1);
    assert_eq!(
        fake.calls[4].1,
        Call::Pwrite64 {
            fd: 3,
            data: Buf::Bytes(b"ab\0\0".to_vec()),
            len: 4,
            off: 16
        }
    );
}

#[test]
fn integers_compare_modulo_2_64() {
    let text = "brk(0) = $h\nbrk($h+3*4K) = $h+0x3000\nmunmap(1, 2) = -1\nbrk(0) = 0xffffffffffffffff\nbrk(1) = $h\n";
    let mut fake = Fake::new([
        Outcome::Int(0x5555_5555_9000),
        Outcome::Int(0x5555_5555_c000),
        Outcome::Err(EINVAL),
        Outcome::Int(u64::MAX),
        Outcome::Int(0x5555_5555_c000),
    ]);
    let (out, summary) = run(text, &mut fake, true);
    assert_eq!(
        out,
        "brk(0x1) = 0x55555555c000\n\
         FAIL line 5: expected $h = 0x555555559000, got 0x55555555c000\n\
         5 calls, 5 expectations, 1 failed\n"
    );
    assert_eq!(summary.failed, 1);
}
