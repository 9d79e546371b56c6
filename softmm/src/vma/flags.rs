//! `vm_flags` bits, with Linux's names and values, and their smaps `VmFlags` mnemonics.

bitflags::bitflags! {
    /// A VMA's `vm_flags` (Linux's values). The `VM_*` constants below name each bit as
    /// Linux does.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct VmFlags: u64 {
        /// `VM_READ` (smaps `rd`).
        const VM_READ = 0x1;
        /// `VM_WRITE` (smaps `wr`).
        const VM_WRITE = 0x2;
        /// `VM_EXEC` (smaps `ex`).
        const VM_EXEC = 0x4;
        /// `VM_SHARED` (smaps `sh`).
        const VM_SHARED = 0x8;
        /// `VM_MAYREAD` (smaps `mr`).
        const VM_MAYREAD = 0x10;
        /// `VM_MAYWRITE` (smaps `mw`).
        const VM_MAYWRITE = 0x20;
        /// `VM_MAYEXEC` (smaps `me`).
        const VM_MAYEXEC = 0x40;
        /// `VM_MAYSHARE` (smaps `ms`).
        const VM_MAYSHARE = 0x80;
        /// `VM_GROWSDOWN` (smaps `gd`).
        const VM_GROWSDOWN = 0x100;
        /// `VM_UFFD_MISSING` (smaps `um`).
        const VM_UFFD_MISSING = 0x200;
        /// `VM_PFNMAP` (smaps `pf`).
        const VM_PFNMAP = 0x400;
        /// The VMA may contain guard markers (Linux 6.18): set by MADV_GUARD_INSTALL, never
        /// cleared, ignored when deciding merges.
        const VM_MAYBE_GUARD = 0x800;
        /// `VM_UFFD_WP` (smaps `uw`).
        const VM_UFFD_WP = 0x1000;
        /// `VM_LOCKED` (smaps `lo`).
        const VM_LOCKED = 0x2000;
        /// `VM_IO` (smaps `io`).
        const VM_IO = 0x4000;
        /// `VM_SEQ_READ` (smaps `sr`).
        const VM_SEQ_READ = 0x8000;
        /// `VM_RAND_READ` (smaps `rr`).
        const VM_RAND_READ = 0x10000;
        /// `VM_DONTCOPY` (smaps `dc`).
        const VM_DONTCOPY = 0x20000;
        /// `VM_DONTEXPAND` (smaps `de`).
        const VM_DONTEXPAND = 0x40000;
        /// `VM_LOCKONFAULT` (smaps `lf`).
        const VM_LOCKONFAULT = 0x80000;
        /// `VM_ACCOUNT` (smaps `ac`).
        const VM_ACCOUNT = 0x100000;
        /// `VM_NORESERVE` (smaps `nr`).
        const VM_NORESERVE = 0x200000;
        /// `VM_HUGETLB` (smaps `ht`).
        const VM_HUGETLB = 0x400000;
        /// `VM_SYNC` (smaps `sf`).
        const VM_SYNC = 0x800000;
        /// `VM_ARCH_1` (smaps `ar`).
        const VM_ARCH_1 = 0x0100_0000;
        /// `VM_WIPEONFORK` (smaps `wf`).
        const VM_WIPEONFORK = 0x0200_0000;
        /// `VM_DONTDUMP` (smaps `dd`).
        const VM_DONTDUMP = 0x0400_0000;
        /// `VM_SOFTDIRTY` (smaps `sd`).
        const VM_SOFTDIRTY = 0x0800_0000;
        /// `VM_MIXEDMAP` (smaps `mm`).
        const VM_MIXEDMAP = 0x1000_0000;
        /// `VM_HUGEPAGE` (smaps `hg`).
        const VM_HUGEPAGE = 0x2000_0000;
        /// `VM_NOHUGEPAGE` (smaps `nh`).
        const VM_NOHUGEPAGE = 0x4000_0000;
        /// `VM_MERGEABLE` (smaps `mg`).
        const VM_MERGEABLE = 0x8000_0000;
        /// `VM_DROPPABLE` (smaps `dp`, bit 40): pages reclaim may drop, dirty or not.
        const VM_DROPPABLE = 1 << 40;
    }
}

/// `VM_READ`.
pub const VM_READ: VmFlags = VmFlags::VM_READ;
/// `VM_WRITE`.
pub const VM_WRITE: VmFlags = VmFlags::VM_WRITE;
/// `VM_EXEC`.
pub const VM_EXEC: VmFlags = VmFlags::VM_EXEC;
/// `VM_SHARED`.
pub const VM_SHARED: VmFlags = VmFlags::VM_SHARED;
/// `VM_MAYREAD`.
pub const VM_MAYREAD: VmFlags = VmFlags::VM_MAYREAD;
/// `VM_MAYWRITE`.
pub const VM_MAYWRITE: VmFlags = VmFlags::VM_MAYWRITE;
/// `VM_MAYEXEC`.
pub const VM_MAYEXEC: VmFlags = VmFlags::VM_MAYEXEC;
/// `VM_MAYSHARE`.
pub const VM_MAYSHARE: VmFlags = VmFlags::VM_MAYSHARE;
/// `VM_GROWSDOWN`.
pub const VM_GROWSDOWN: VmFlags = VmFlags::VM_GROWSDOWN;
/// `VM_UFFD_MISSING`.
pub const VM_UFFD_MISSING: VmFlags = VmFlags::VM_UFFD_MISSING;
/// `VM_PFNMAP`.
pub const VM_PFNMAP: VmFlags = VmFlags::VM_PFNMAP;
/// `VM_MAYBE_GUARD`.
pub const VM_MAYBE_GUARD: VmFlags = VmFlags::VM_MAYBE_GUARD;
/// `VM_UFFD_WP`.
pub const VM_UFFD_WP: VmFlags = VmFlags::VM_UFFD_WP;
/// `VM_LOCKED`.
pub const VM_LOCKED: VmFlags = VmFlags::VM_LOCKED;
/// `VM_IO`.
pub const VM_IO: VmFlags = VmFlags::VM_IO;
/// `VM_SEQ_READ`.
pub const VM_SEQ_READ: VmFlags = VmFlags::VM_SEQ_READ;
/// `VM_RAND_READ`.
pub const VM_RAND_READ: VmFlags = VmFlags::VM_RAND_READ;
/// `VM_DONTCOPY`.
pub const VM_DONTCOPY: VmFlags = VmFlags::VM_DONTCOPY;
/// `VM_DONTEXPAND`.
pub const VM_DONTEXPAND: VmFlags = VmFlags::VM_DONTEXPAND;
/// `VM_LOCKONFAULT`.
pub const VM_LOCKONFAULT: VmFlags = VmFlags::VM_LOCKONFAULT;
/// `VM_ACCOUNT`.
pub const VM_ACCOUNT: VmFlags = VmFlags::VM_ACCOUNT;
/// `VM_NORESERVE`.
pub const VM_NORESERVE: VmFlags = VmFlags::VM_NORESERVE;
/// `VM_HUGETLB`.
pub const VM_HUGETLB: VmFlags = VmFlags::VM_HUGETLB;
/// `VM_SYNC`.
pub const VM_SYNC: VmFlags = VmFlags::VM_SYNC;
/// `VM_ARCH_1`.
pub const VM_ARCH_1: VmFlags = VmFlags::VM_ARCH_1;
/// `VM_WIPEONFORK`.
pub const VM_WIPEONFORK: VmFlags = VmFlags::VM_WIPEONFORK;
/// `VM_DONTDUMP`.
pub const VM_DONTDUMP: VmFlags = VmFlags::VM_DONTDUMP;
/// `VM_SOFTDIRTY`.
pub const VM_SOFTDIRTY: VmFlags = VmFlags::VM_SOFTDIRTY;
/// `VM_MIXEDMAP`.
pub const VM_MIXEDMAP: VmFlags = VmFlags::VM_MIXEDMAP;
/// `VM_HUGEPAGE`.
pub const VM_HUGEPAGE: VmFlags = VmFlags::VM_HUGEPAGE;
/// `VM_NOHUGEPAGE`.
pub const VM_NOHUGEPAGE: VmFlags = VmFlags::VM_NOHUGEPAGE;
/// `VM_MERGEABLE`.
pub const VM_MERGEABLE: VmFlags = VmFlags::VM_MERGEABLE;
/// `VM_DROPPABLE`.
pub const VM_DROPPABLE: VmFlags = VmFlags::VM_DROPPABLE;
/// Access bits.
pub const VM_ACCESS_FLAGS: VmFlags = VM_READ.union(VM_WRITE).union(VM_EXEC);
/// Mappings that are never merged (Linux `VM_SPECIAL`).
pub const VM_SPECIAL: VmFlags = VM_IO
    .union(VM_DONTEXPAND)
    .union(VM_PFNMAP)
    .union(VM_MIXEDMAP);
/// Flags that do not prevent a merge and survive it (the merged VMA has them if any
/// part had them).
pub const VM_STICKY: VmFlags = VM_SOFTDIRTY.union(VM_MAYBE_GUARD);
/// Lock bits set by mlock/mlock2/mlockall.
pub const VM_LOCKED_MASK: VmFlags = VM_LOCKED.union(VM_LOCKONFAULT);

/// smaps `VmFlags` mnemonic of each bit, in bit order (as Linux prints them).
pub const MNEMONICS: &[(VmFlags, &str)] = &[
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
    (VM_MAYBE_GUARD, "gu"),
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

/// The `VmFlags` text: mnemonics separated by spaces (no trailing space).
pub fn vmflags_string(flags: VmFlags) -> String {
    MNEMONICS
        .iter()
        .filter(|(b, _)| flags.intersects(*b))
        .map(|(_, m)| *m)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `vm_flags` access bits for mmap/mprotect `prot`.
pub fn prot_to_vm(prot: crate::abi::Prot) -> VmFlags {
    // PROT_READ/WRITE/EXEC are VM_READ/WRITE/EXEC bit for bit.
    VmFlags::from_bits_truncate(prot.bits()) & VM_ACCESS_FLAGS
}
