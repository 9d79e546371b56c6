//! Malformed scripts: every message and column is what linux-run reports for the same line
//! (the table was produced by running `shared/tools/linux-run` on each line, after a first
//! line that binds `$a`).

use softmm_cli::script::{
    CallName, Expect, Expr, ScriptError,
    ast::{BinOp, Line},
    parse_script,
};

const FIRST: &str = "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $a\n";

/// (line 2 of the script, the error as `LINE:COL: message`)
const CASES: &[(&str, &str)] = &[
    ("poke($a, \"abc) = 3", "2:10: unterminated string"),
    ("poke($a, \"ab\\q\") = 3", "2:13: unknown escape \\q"),
    ("poke($a, \"ab\\x4\") = 3", "2:13: \\x needs two hex digits"),
    ("poke($a, \"ab\\", "2:10: unterminated string"),
    (
        "mmap(NULL, 4096, PROT_READX, MAP_PRIVATE, -1, 0)",
        "2:18: unknown constant PROT_READX",
    ),
    (
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0",
        "2:47: expected ',', found end of line",
    ),
    (
        "mmap(NULL, (4096, PROT_READ, MAP_PRIVATE, -1, 0)",
        "2:17: expected ')', found ','",
    ),
    (
        "mmap(NULL, 4096), PROT_READ",
        "2:1: mmap takes 6 arguments, 2 given",
    ),
    ("mmapp(NULL, 4096)", "2:1: unknown call mmapp"),
    ("munmap(0x1000)", "2:1: munmap takes 2 arguments, 1 given"),
    (
        "munmap(0x1000, 1, 2)",
        "2:1: munmap takes 2 arguments, 3 given",
    ),
    (
        "mremap(1, 2, 3)",
        "2:1: mremap takes 4 or 5 arguments, 3 given",
    ),
    (
        "mremap(1, 2, 3, 4, 5, 6)",
        "2:1: mremap takes 4 or 5 arguments, 6 given",
    ),
    (
        "munlockall(1)",
        "2:1: munlockall takes 0 arguments, 1 given",
    ),
    (
        "munmap($b, 4096)",
        "2:8: variable $b is used before it is bound",
    ),
    (
        "munmap(0x1000, 4096) = EINVAL",
        "2:24: an error result is written -1 EINVAL",
    ),
    ("munmap(0x1000, 4096) = -1 EFOO", "2:27: unknown errno EFOO"),
    (
        "munmap(0x1000, 4096) = -1 EINVAL (Invalid argument",
        "2:51: unterminated (message)",
    ),
    (
        "munmap(0x1000, 4096) = -1 EINVAL (Invalid (nested) argument) trailing",
        "2:62: unexpected text 'trailing'",
    ),
    ("munmap(0x1000, 4096) = FOO", "2:24: unknown result FOO"),
    (
        "munmap(0x1000, 4096) = SIGKILL",
        "2:24: unknown result SIGKILL",
    ),
    ("munmap(0x1000, 4096) = 0 0", "2:26: unexpected text '0'"),
    ("munmap(0x1000, 4096) = -1EINVAL", "2:25: bad number"),
    ("munmap(0x1000, 4096) = _foo", "2:24: unknown constant _foo"),
    (
        "munmap(0x1000, 4096) =",
        "2:23: expected a value, found end of line",
    ),
    (
        "munmap(0x1000, 4096) = ? extra",
        "2:26: unexpected text 'extra'",
    ),
    (
        "munmap(\"x\", 4096)",
        "2:8: munmap: argument must be an integer",
    ),
    ("smaps(0x1000, Rss)", "2:15: unknown constant Rss"),
    ("smaps(0x1000)", "2:1: smaps takes 2 arguments, 1 given"),
    ("smaps() = 4", "2:11: smaps() has no result to expect"),
    ("maps() = 1", "2:10: maps() has no result to expect"),
    ("maps() = \"x\"", "2:10: maps() has no result to expect"),
    (
        "vmflags(0x1000, 1)",
        "2:1: vmflags takes 1 arguments, 2 given",
    ),
    ("munmap(4k, 1)", "2:8: bad number"),
    ("munmap(0x, 1)", "2:8: bad hex number"),
    ("munmap(08, 1)", "2:8: bad octal number"),
    ("munmap(1K2, 1)", "2:8: bad number"),
    (
        "munmap(0x1000, 4096) =    # nothing",
        "2:36: expected a value, found end of line",
    ),
    (
        "$x munmap(0x1000, 4096)",
        "2:1: variable $x is used before it is bound",
    ),
    (
        "$ munmap(0x1000, 4096)",
        "2:1: variable $munmap is used before it is bound",
    ),
    ("12x munmap(0x1000, 4096)", "2:1: bad number"),
    ("()", "2:1: expected a call name"),
    ("= 5", "2:1: expected a call name"),
    ("munmap(,)", "2:8: expected a value, found ','"),
    ("munmap(1,,2)", "2:10: expected a value, found ','"),
    ("munmap(1 2)", "2:10: expected ',', found '2'"),
    ("munmap(1, 2 3)", "2:13: expected ',', found '3'"),
    ("munmap(1+, 2)", "2:10: expected a value, found ','"),
    ("munmap(-, 2)", "2:9: expected a value, found ','"),
    ("munmap(1, \"a\" \"b\")", "2:15: expected ',', found '\"'"),
    ("munmap(1, $)", "2:11: expected a variable name after '$'"),
    ("munmap(1, 2) = \"unterminated", "2:16: unterminated string"),
    ("munmap(1, 2) = \"bad \\z\"", "2:21: unknown escape \\z"),
    (
        "munmap(1, 2) = -1 EINVAL EINVAL",
        "2:26: unexpected text 'EINVAL'",
    ),
    ("munmap(1, 2) = SIGSEGV (x)", "2:24: unexpected text '(x)'"),
    ("openat(AT_FDCWD, f, O_RDWR)", "2:18: unknown constant f"),
    (
        "openat(AT_FDCWD, \"f\", \"O_RDWR\")",
        "2:23: openat: argument must be an integer",
    ),
    (
        "memfd_create(\"x\")",
        "2:1: memfd_create takes 2 arguments, 1 given",
    ),
    ("exit_group()", "2:1: exit_group takes 1 arguments, 0 given"),
    ("fork(1)", "2:1: fork takes 0 arguments, 1 given"),
    (
        "$child munmap(1, 2)",
        "2:1: variable $child is used before it is bound",
    ),
    (
        "$child peek(1, 2) = $child",
        "2:1: variable $child is used before it is bound",
    ),
    (
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0) = $a extra",
        "2:54: unexpected text 'extra'",
    ),
    ("é(1)", "2:1: unknown call é"),
    ("munmap(1, é)", "2:11: unknown constant é"),
    ("munmap(1, 2) = é", "2:16: unknown result é"),
    ("peek(1, 2) = \"\\xZZ\"", "2:15: \\x needs two hex digits"),
    ("munmap(1, 2) == 0", "2:15: expected a value, found '='"),
    ("munmap(1, $a $a)", "2:14: expected ',', found '$'"),
    ("munmap(1, 2) = -1 (x)", "2:19: unexpected text '(x)'"),
    ("peek(1, 2) = \"é\" é", "2:18: unexpected text 'é'"),
    ("\"x\"", "2:1: expected a call name"),
    ("munmap", "2:7: expected '(', found end of line"),
    ("munmap 1", "2:8: expected '(', found '1'"),
    (
        "munmap(1, 2) = -1 EINVAL (a) (b)",
        "2:30: unexpected text '(b)'",
    ),
    ("munmap(1, 2) = (1", "2:18: expected ')', found end of line"),
    ("munmap(1, 2) = 1)", "2:17: unexpected text ')'"),
    ("munmap(1, 2) = 0x", "2:16: bad hex number"),
    ("munmap(1, 2) = -1 (x)", "2:19: unexpected text '(x)'"),
    (
        "poke(1, \"a\", \"b\")",
        "2:1: poke takes 2 arguments, 3 given",
    ),
    (
        "count(1, 2, \"a\")",
        "2:13: count: argument must be an integer",
    ),
    (
        "layout(\"a\", 2)",
        "2:8: layout: argument must be an integer",
    ),
    ("munmap(1, 2) = SIGSEGV+1", "2:23: unexpected text '+1'"),
    (
        "smaps(1, \"Rss\", 3)",
        "2:1: smaps takes 2 arguments, 3 given",
    ),
    ("smaps(\"Rss\")", "2:1: smaps takes 2 arguments, 1 given"),
    (
        "mremap(1, 2, 3, 4, \"x\")",
        "2:20: mremap: argument must be an integer",
    ),
    (
        "mmap(1,2,3,4,5,\"6\")",
        "2:16: mmap: argument must be an integer",
    ),
];

fn parse_second_line(line: &str) -> Result<Vec<Line>, ScriptError> {
    parse_script(&format!("{FIRST}{line}\n")).map(|s| s.lines)
}

#[test]
fn errors_match_linux_run() {
    let mut wrong = Vec::new();
    for (line, want) in CASES {
        match parse_second_line(line) {
            Ok(_) => wrong.push(format!("{line:?}: parsed, want {want}")),
            Err(e) if e.to_string() != *want => {
                wrong.push(format!("{line:?}: got {e}, want {want}"));
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn error_fields() {
    let e = parse_script("munmap(0x1000, 4096)\n\n  mmapp(1)\n").unwrap_err();
    assert_eq!(
        e,
        ScriptError {
            line: 3,
            col: 3,
            msg: "unknown call mmapp".into()
        }
    );
}

#[test]
fn a_bind_needs_a_name() {
    // linux-run binds a variable named "" here; softmm refuses the line.
    let e = parse_second_line("munmap(0x1000, 4096) = $").unwrap_err();
    assert_eq!(e.to_string(), "2:24: expected a variable name after '$'");
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = parse_second_line("poke($a, \"é\", 1) = 1").unwrap_err();
    assert_eq!(e.to_string(), "2:1: poke takes 2 arguments, 3 given");
    let e = parse_second_line("peek(1, 2) = \"éé\" x").unwrap_err();
    assert_eq!(e.to_string(), "2:19: unexpected text 'x'");
}

#[test]
fn blank_and_comment_lines_are_dropped() {
    let s = parse_script("\n# comment\n   \t\r\nmunmap(1, 2) # trailing\n").unwrap();
    assert_eq!(s.lines.len(), 1);
    assert_eq!(s.lines[0].no, 4);
    assert_eq!(s.lines[0].expect, None);
}

#[test]
fn valid_lines() {
    let cases = [
        "munmap(0x1000, 4096) = -1",
        "munmap(0x1000, 4096) = -1+1",
        "munmap(0x1000, 4096) = -10",
        "munmap(0x1000, 4096) = PROT_READ|PROT_WRITE",
        "munmap(0x1000, 4096) = ?",
        "munmap(0x1000, 4096) = -1 EINVAL (Invalid (nested) argument)",
        "munmap(1, 2) = -  1  EINVAL  (  x  )  ",
        "munmap(1, 2) = -1 EWOULDBLOCK",
        "munmap(1, 2) = SIGSEGV # ok",
        "munmap(1, 2) = $a+1",
        "munmap(1, 2) = ($a)",
        "munmap(1, 2)=0",
        "munmap (1, 2)",
        " \tmunmap(1, 2)\t=\t0\t",
        "smaps()",
        "smaps() = ?",
        "maps()",
        "2 munmap(0x1000, 4096)",
        "$a munmap(0x1000, 4096)",
        "openat(AT_FDCWD, \"f\", O_RDWR)",
        "openat(AT_FDCWD, \"f\", O_RDWR|O_CREAT, 0644)",
        "pwrite64(3, 5, 3, 0)",
        "poke(1, $a)",
        "peek(1, 2) = \"\\x00\\xff\"",
        "mremap(1, 2, 3, MREMAP_MAYMOVE|MREMAP_FIXED, $a+4K)",
    ];
    for line in cases {
        assert!(parse_second_line(line).is_ok(), "{line:?} should parse");
    }
}

#[test]
fn line_structure() {
    let lines = parse_second_line("$a mprotect($a+4K, 2*4K, PROT_READ) = -1 ENOMEM (x)").unwrap();
    let l = &lines[1];
    assert_eq!(l.no, 2);
    assert_eq!(l.proc, Some(Expr::Var("a".into())));
    assert_eq!(l.call, CallName::Mprotect);
    assert_eq!(
        l.args,
        vec![
            Expr::Bin(
                BinOp::Add,
                Box::new(Expr::Var("a".into())),
                Box::new(Expr::Num(4096))
            ),
            Expr::Bin(
                BinOp::Mul,
                Box::new(Expr::Num(2)),
                Box::new(Expr::Num(4096))
            ),
            Expr::Num(1),
        ]
    );
    assert_eq!(l.expect, Some(Expect::Err(12)));
    assert_eq!(lines[0].expect, Some(Expect::Bind("a".into())));
}

#[test]
fn expectations() {
    let expect = |r: &str| {
        parse_second_line(&format!("munmap(1, 2) = {r}")).unwrap()[1]
            .expect
            .clone()
    };
    assert_eq!(expect("SIGBUS"), Some(Expect::Sig(7)));
    assert_eq!(expect("SIGSEGV"), Some(Expect::Sig(11)));
    assert_eq!(expect("\"a\\tb\""), Some(Expect::Str(b"a\tb".to_vec())));
    assert_eq!(expect("-1 EEXIST"), Some(Expect::Err(17)));
    assert_eq!(expect("-1 ENOTSUP"), Some(Expect::Err(95)));
    assert_eq!(expect("?"), None);
    assert_eq!(expect("$new"), Some(Expect::Bind("new".into())));
    assert_eq!(expect("$a # comment"), Some(Expect::Bind("a".into())));
    assert_eq!(expect("NULL"), Some(Expect::Int(Expr::Num(0))));
    assert_eq!(
        expect("-1"),
        Some(Expect::Int(Expr::Neg(Box::new(Expr::Num(1)))))
    );
    assert_eq!(expect("0644"), Some(Expect::Int(Expr::Num(0o644))));
}

#[test]
fn smaps_without_arguments_prints_everything() {
    let lines = parse_second_line("smaps()").unwrap();
    assert_eq!(lines[1].call, CallName::SmapsAll);
    assert_eq!(lines[1].call.name(), "smaps");
}

#[test]
fn bound_variables_carry_across_lines() {
    let s = parse_script("fork() = $child\n$child peek(1, 2) = $child\n").unwrap();
    assert_eq!(s.lines[1].proc, Some(Expr::Var("child".into())));
}
