//! The parsed form of a script: lines, calls, argument expressions and expectations.
//!
//! A [`Script`] is what [`parse_script`](super::parse_script) returns: every line that holds a
//! call, in order, with its line number. Nothing here depends on the memory manager; the
//! executor ([`run`](super::run)) evaluates the expressions against its variables.
//!
//! The call table ([`CallName`], [`ArgKind`]) mirrors linux-run's `CALLS`: the kind of each
//! argument decides both what the parser accepts (a string or an integer expression) and how
//! the echo prints it (`PROT_READ|PROT_WRITE`, `0x7f...`, `MADV_DONTNEED`, ...).

/// What an argument of a call is, for parsing (string or integer) and for printing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// An address: `NULL` or hex.
    Addr,
    /// A length: unsigned decimal.
    Len,
    /// `PROT_*` bits.
    Prot,
    /// `MAP_*` flags (type, bits, huge-page size).
    MapFlags,
    /// A file descriptor: signed decimal.
    Fd,
    /// A file offset: `0` or hex.
    Off,
    /// A `MADV_*` value.
    Advice,
    /// `MREMAP_*` bits.
    MremapFlags,
    /// `MLOCK_*` bits.
    Mlock2Flags,
    /// `MCL_*` bits.
    MclFlags,
    /// `MS_*` bits.
    MsFlags,
    /// A memfd name (a string literal).
    Name,
    /// `MFD_*` bits.
    MfdFlags,
    /// A directory descriptor (`AT_FDCWD`).
    Dirfd,
    /// A path (a string literal).
    Path,
    /// `O_*` flags.
    OFlags,
    /// A file mode, in octal.
    Mode,
    /// A plain signed integer.
    Int,
    /// Bytes to write (a string, or a variable holding bytes).
    Data,
    /// A byte value, in hex.
    Byte,
    /// An smaps field name (a string literal).
    Field,
}

impl ArgKind {
    /// Whether the parser requires a string literal for this argument.
    pub fn is_string(self) -> bool {
        matches!(self, ArgKind::Name | ArgKind::Path | ArgKind::Field)
    }
}

/// One argument slot of a call: its kind and whether it may be left out (trailing only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    /// How the argument is parsed and printed.
    pub kind: ArgKind,
    /// An optional trailing argument (`mremap`'s new address, `openat`'s mode).
    pub optional: bool,
}

const fn req(kind: ArgKind) -> ArgSpec {
    ArgSpec {
        kind,
        optional: false,
    }
}

const fn opt(kind: ArgKind) -> ArgSpec {
    ArgSpec {
        kind,
        optional: true,
    }
}

macro_rules! calls {
    ($($variant:ident = $name:literal [$($spec:expr),*];)*) => {
        /// Every call a script line may make (system calls and pseudo-calls).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum CallName {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
            /// `smaps()` without arguments: print the whole smaps text.
            SmapsAll,
        }

        impl CallName {
            /// Looks a call up by the name a script uses (`smaps` is the one-field form).
            pub fn from_name(name: &str) -> Option<CallName> {
                match name {
                    $($name => Some(CallName::$variant),)*
                    _ => None,
                }
            }

            /// The name as written and echoed.
            pub fn name(self) -> &'static str {
                match self {
                    $(CallName::$variant => $name,)*
                    CallName::SmapsAll => "smaps",
                }
            }

            /// The argument slots, in order.
            pub fn args(self) -> &'static [ArgSpec] {
                use ArgKind::*;
                match self {
                    $(CallName::$variant => const { &[$($spec),*] },)*
                    CallName::SmapsAll => &[],
                }
            }
        }
    };
}

calls! {
    Mmap = "mmap" [req(Addr), req(Len), req(Prot), req(MapFlags), req(Fd), req(Off)];
    Munmap = "munmap" [req(Addr), req(Len)];
    Mprotect = "mprotect" [req(Addr), req(Len), req(Prot)];
    Mremap = "mremap" [req(Addr), req(Len), req(Len), req(MremapFlags), opt(Addr)];
    Madvise = "madvise" [req(Addr), req(Len), req(Advice)];
    Brk = "brk" [req(Addr)];
    Mlock = "mlock" [req(Addr), req(Len)];
    Mlock2 = "mlock2" [req(Addr), req(Len), req(Mlock2Flags)];
    Munlock = "munlock" [req(Addr), req(Len)];
    Mlockall = "mlockall" [req(MclFlags)];
    Munlockall = "munlockall" [];
    Msync = "msync" [req(Addr), req(Len), req(MsFlags)];
    MemfdCreate = "memfd_create" [req(Name), req(MfdFlags)];
    Openat = "openat" [req(Dirfd), req(Path), req(OFlags), opt(Mode)];
    Ftruncate = "ftruncate" [req(Fd), req(Len)];
    Pwrite64 = "pwrite64" [req(Fd), req(Data), req(Len), req(Int)];
    Close = "close" [req(Fd)];
    Fork = "fork" [];
    ExitGroup = "exit_group" [req(Int)];
    Poke = "poke" [req(Addr), req(Data)];
    Fill = "fill" [req(Addr), req(Len), req(Byte)];
    Peek = "peek" [req(Addr), req(Len)];
    Count = "count" [req(Addr), req(Len), req(Byte)];
    Layout = "layout" [req(Addr), req(Len)];
    Resident = "resident" [req(Addr), req(Len)];
    Smaps = "smaps" [req(Addr), req(Field)];
    Vmflags = "vmflags" [req(Addr)];
    Maps = "maps" [];
}

impl CallName {
    /// Calls whose integer result is an address, printed in hex (`= 0x7ffff7ffd000`).
    pub fn returns_address(self) -> bool {
        matches!(self, CallName::Mmap | CallName::Mremap | CallName::Brk)
    }

    /// Calls that print text instead of returning a result (`maps()`, `smaps()`).
    pub fn prints(self) -> bool {
        matches!(self, CallName::Maps | CallName::SmapsAll)
    }
}

/// A binary operator of an integer expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `|` (lowest precedence)
    Or,
}

/// An argument, a PROC prefix or an expected value, before evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// An integer literal or a constant, already converted (modulo 2^64).
    Num(u64),
    /// A string literal (C escapes decoded).
    Str(Vec<u8>),
    /// `$name`.
    Var(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// `a OP b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

/// What a line expects of its result (`= ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `= $name`: bind when unbound, else compare.
    Bind(String),
    /// `= EXPR`: an integer (`-1` matches any failure).
    Int(Expr),
    /// `= -1 ENAME`: the errno number.
    Err(i32),
    /// `= "..."`: bytes or text.
    Str(Vec<u8>),
    /// `= SIGSEGV` / `= SIGBUS`: the signal number.
    Sig(i32),
}

/// One call line of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the script file.
    pub no: usize,
    /// The `PROC` prefix, if any.
    pub proc: Option<Expr>,
    /// The call.
    pub call: CallName,
    /// The argument expressions, as many as the call takes.
    pub args: Vec<Expr>,
    /// The expectation, if any (`= ?` is none).
    pub expect: Option<Expect>,
}

/// A parsed script: its call lines in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// The lines that hold a call.
    pub lines: Vec<Line>,
}

/// A runtime value: what an expression evaluates to and what a variable holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer, modulo 2^64.
    Int(u64),
    /// Bytes (a string literal, or a `peek`/text result bound to a variable).
    Bytes(Vec<u8>),
}
