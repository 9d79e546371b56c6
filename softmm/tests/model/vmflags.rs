//! The reference model's `vm_flags`: Linux's bit values, written out here so that the
//! model does not borrow the library's definitions, and the smaps `VmFlags` text.

#![allow(dead_code)]

pub const VM_READ: u64 = 0x1;
pub const VM_WRITE: u64 = 0x2;
pub const VM_EXEC: u64 = 0x4;
pub const VM_SHARED: u64 = 0x8;
pub const VM_MAYREAD: u64 = 0x10;
pub const VM_MAYWRITE: u64 = 0x20;
pub const VM_MAYEXEC: u64 = 0x40;
pub const VM_MAYSHARE: u64 = 0x80;
pub const VM_GROWSDOWN: u64 = 0x100;
pub const VM_UFFD_MISSING: u64 = 0x200;
pub const VM_PFNMAP: u64 = 0x400;
pub const VM_UFFD_WP: u64 = 0x1000;
pub const VM_LOCKED: u64 = 0x2000;
pub const VM_IO: u64 = 0x4000;
pub const VM_SEQ_READ: u64 = 0x8000;
pub const VM_RAND_READ: u64 = 0x10000;
pub const VM_DONTCOPY: u64 = 0x20000;
pub const VM_DONTEXPAND: u64 = 0x40000;
pub const VM_LOCKONFAULT: u64 = 0x80000;
pub const VM_ACCOUNT: u64 = 0x100000;
pub const VM_NORESERVE: u64 = 0x200000;
pub const VM_HUGETLB: u64 = 0x400000;
pub const VM_SYNC: u64 = 0x800000;
pub const VM_ARCH_1: u64 = 0x0100_0000;
pub const VM_WIPEONFORK: u64 = 0x0200_0000;
pub const VM_DONTDUMP: u64 = 0x0400_0000;
pub const VM_SOFTDIRTY: u64 = 0x0800_0000;
pub const VM_MIXEDMAP: u64 = 0x1000_0000;
pub const VM_HUGEPAGE: u64 = 0x2000_0000;
pub const VM_NOHUGEPAGE: u64 = 0x4000_0000;
pub const VM_MERGEABLE: u64 = 0x8000_0000;
pub const VM_DROPPABLE: u64 = 1 << 40;

/// Access bits.
pub const VM_ACCESS_FLAGS: u64 = VM_READ | VM_WRITE | VM_EXEC;

/// smaps `VmFlags` mnemonics in bit order ("gu" is printed by the harness).
const MNEMONICS: &[(u64, &str)] = &[
    (VM_READ, "rd"),
    (VM_WRITE, "wr"),
    (VM_EXEC, "ex"),
    (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"),
    (VM_MAYWRITE, "mw"),
    (VM_MAYEXEC, "me"),
    (VM_MAYSHARE, "ms"),
    (VM_GROWSDOWN, "gd"),
    (VM_UFFD_MISSING, "um"),
    (VM_PFNMAP, "pf"),
    (VM_UFFD_WP, "uw"),
    (VM_LOCKED, "lo"),
    (VM_IO, "io"),
    (VM_SEQ_READ, "sr"),
    (VM_RAND_READ, "rr"),
    (VM_DONTCOPY, "dc"),
    (VM_DONTEXPAND, "de"),
    (VM_LOCKONFAULT, "lf"),
    (VM_ACCOUNT, "ac"),
    (VM_NORESERVE, "nr"),
    (VM_HUGETLB, "ht"),
    (VM_SYNC, "sf"),
    (VM_ARCH_1, "ar"),
    (VM_WIPEONFORK, "wf"),
    (VM_DONTDUMP, "dd"),
    (VM_SOFTDIRTY, "sd"),
    (VM_MIXEDMAP, "mm"),
    (VM_HUGEPAGE, "hg"),
    (VM_NOHUGEPAGE, "nh"),
    (VM_MERGEABLE, "mg"),
    (VM_DROPPABLE, "dp"),
];

/// The `VmFlags` text of `flags` (mnemonics separated by spaces).
pub fn vmflags_string(flags: u64) -> String {
    MNEMONICS
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, m)| *m)
        .collect::<Vec<_>>()
        .join(" ")
}
