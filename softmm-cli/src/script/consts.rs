//! Linux x86-64 uapi constants a script may name, and the tables the echo prints flags with.
//!
//! The tables are linux-run's (`PROT`, `MAP_TYPES`, `MAP_BITS`, `HUGE_SIZES`, `MADV`, ...),
//! in the same order, because the order decides how an or-ed value is printed
//! (`MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED`). [`lookup`] maps every name to its value; the
//! formatter ([`format`](super::format)) goes the other way.

/// `PROT_*` bits, in print order.
pub const PROT: &[(&str, u64)] = &[
    ("PROT_READ", 0x1),
    ("PROT_WRITE", 0x2),
    ("PROT_EXEC", 0x4),
    ("PROT_SEM", 0x8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
];

/// The mapping types (the `MAP_TYPE` nibble of the mmap flags).
pub const MAP_TYPES: &[(&str, u64)] = &[
    ("MAP_SHARED", 0x01),
    ("MAP_PRIVATE", 0x02),
    ("MAP_SHARED_VALIDATE", 0x03),
    ("MAP_DROPPABLE", 0x08),
];

/// Single-bit `MAP_*` flags, in print order.
pub const MAP_BITS: &[(&str, u64)] = &[
    ("MAP_FIXED", 0x10),
    ("MAP_ANONYMOUS", 0x20),
    ("MAP_32BIT", 0x40),
    ("MAP_ABOVE4G", 0x80),
    ("MAP_GROWSDOWN", 0x100),
    ("MAP_DENYWRITE", 0x800),
    ("MAP_EXECUTABLE", 0x1000),
    ("MAP_LOCKED", 0x2000),
    ("MAP_NORESERVE", 0x4000),
    ("MAP_POPULATE", 0x8000),
    ("MAP_NONBLOCK", 0x10000),
    ("MAP_STACK", 0x20000),
    ("MAP_HUGETLB", 0x40000),
    ("MAP_SYNC", 0x80000),
    ("MAP_FIXED_NOREPLACE", 0x100000),
    ("MAP_UNINITIALIZED", 0x4000000),
];

/// The shift of the huge-page size field in mmap and memfd_create flags.
pub const HUGE_SHIFT: u32 = 26;

/// The mask of the huge-page size field (after shifting).
pub const HUGE_MASK: u64 = 0x3f;

/// Huge-page sizes by log2 (`MAP_HUGE_2MB` is `21 << 26`).
pub const HUGE_SIZES: &[(u64, &str)] = &[
    (16, "64KB"),
    (19, "512KB"),
    (20, "1MB"),
    (21, "2MB"),
    (23, "8MB"),
    (24, "16MB"),
    (25, "32MB"),
    (28, "256MB"),
    (29, "512MB"),
    (30, "1GB"),
    (31, "2GB"),
    (34, "16GB"),
];

/// `MADV_*` values.
pub const MADV: &[(&str, u64)] = &[
    ("MADV_NORMAL", 0),
    ("MADV_RANDOM", 1),
    ("MADV_SEQUENTIAL", 2),
    ("MADV_WILLNEED", 3),
    ("MADV_DONTNEED", 4),
    ("MADV_FREE", 8),
    ("MADV_REMOVE", 9),
    ("MADV_DONTFORK", 10),
    ("MADV_DOFORK", 11),
    ("MADV_MERGEABLE", 12),
    ("MADV_UNMERGEABLE", 13),
    ("MADV_HUGEPAGE", 14),
    ("MADV_NOHUGEPAGE", 15),
    ("MADV_DONTDUMP", 16),
    ("MADV_DODUMP", 17),
    ("MADV_WIPEONFORK", 18),
    ("MADV_KEEPONFORK", 19),
    ("MADV_COLD", 20),
    ("MADV_PAGEOUT", 21),
    ("MADV_POPULATE_READ", 22),
    ("MADV_POPULATE_WRITE", 23),
    ("MADV_DONTNEED_LOCKED", 24),
    ("MADV_COLLAPSE", 25),
    ("MADV_HWPOISON", 100),
    ("MADV_SOFT_OFFLINE", 101),
    ("MADV_GUARD_INSTALL", 102),
    ("MADV_GUARD_REMOVE", 103),
];

/// `MREMAP_*` bits.
pub const MREMAP: &[(&str, u64)] = &[
    ("MREMAP_MAYMOVE", 1),
    ("MREMAP_FIXED", 2),
    ("MREMAP_DONTUNMAP", 4),
];

/// `mlock2` flags.
pub const MLOCK2: &[(&str, u64)] = &[("MLOCK_ONFAULT", 1)];

/// `mlockall` flags.
pub const MCL: &[(&str, u64)] = &[("MCL_CURRENT", 1), ("MCL_FUTURE", 2), ("MCL_ONFAULT", 4)];

/// `msync` flags.
pub const MS: &[(&str, u64)] = &[("MS_ASYNC", 1), ("MS_INVALIDATE", 2), ("MS_SYNC", 4)];

/// `memfd_create` flags.
pub const MFD: &[(&str, u64)] = &[
    ("MFD_CLOEXEC", 1),
    ("MFD_ALLOW_SEALING", 2),
    ("MFD_HUGETLB", 4),
    ("MFD_NOEXEC_SEAL", 8),
    ("MFD_EXEC", 0x10),
];

/// The access modes of `open` flags (the low two bits).
pub const O_ACC: &[&str] = &["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"];

/// The other `O_*` bits, in print order.
pub const O_BITS: &[(&str, u64)] = &[
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("O_ASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
    ("O_PATH", 0o10000000),
];

/// `AT_FDCWD` (-100), as the 64-bit value a script computes with.
pub const AT_FDCWD: u64 = (-100i64) as u64;

/// Names that are no table's entry: aliases, masks, shifts, file modes.
const OTHER: &[(&str, u64)] = &[
    ("NULL", 0),
    ("PROT_NONE", 0),
    ("MAP_FILE", 0),
    ("MAP_ANON", 0x20),
    ("MAP_TYPE", 0x0f),
    ("MAP_HUGE_SHIFT", 26),
    ("MAP_HUGE_MASK", 0x3f),
    ("MFD_HUGE_SHIFT", 26),
    ("MFD_HUGE_MASK", 0x3f),
    ("AT_FDCWD", AT_FDCWD),
    ("O_RDONLY", 0),
    ("O_WRONLY", 1),
    ("O_RDWR", 2),
    ("O_ACCMODE", 3),
    ("O_NDELAY", 0o4000),
    ("O_SYNC", 0o4010000),
    ("O_RSYNC", 0o4010000),
    ("O_FSYNC", 0o4010000),
    ("O_TMPFILE", 0o20200000),
    ("S_IRWXU", 0o700),
    ("S_IRUSR", 0o400),
    ("S_IWUSR", 0o200),
    ("S_IXUSR", 0o100),
    ("S_IRWXG", 0o70),
    ("S_IRGRP", 0o40),
    ("S_IWGRP", 0o20),
    ("S_IXGRP", 0o10),
    ("S_IRWXO", 0o7),
    ("S_IROTH", 0o4),
    ("S_IWOTH", 0o2),
    ("S_IXOTH", 0o1),
    ("S_ISUID", 0o4000),
    ("S_ISGID", 0o2000),
    ("S_ISVTX", 0o1000),
];

/// The value of a constant name, or `None` when it is not one.
pub fn lookup(name: &str) -> Option<u64> {
    let tables = [
        OTHER, PROT, MAP_TYPES, MAP_BITS, MADV, MREMAP, MLOCK2, MCL, MS, MFD, O_BITS,
    ];
    if let Some(v) = tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
    {
        return Some(v);
    }
    let size = name
        .strip_prefix("MAP_HUGE_")
        .or_else(|| name.strip_prefix("MFD_HUGE_"))?;
    HUGE_SIZES
        .iter()
        .find(|(_, s)| *s == size)
        .map(|(shift, _)| shift << HUGE_SHIFT)
}

/// The name of a value in a table of whole values (`MADV`), if it has one.
pub fn name_of(table: &[(&'static str, u64)], v: u64) -> Option<&'static str> {
    table.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
}

/// The size name of a huge-page shift (`21` → `"2MB"`).
pub fn huge_size_name(shift: u64) -> Option<&'static str> {
    HUGE_SIZES
        .iter()
        .find(|(s, _)| *s == shift)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_uapi_values() {
        assert_eq!(lookup("PROT_READ"), Some(1));
        assert_eq!(lookup("MAP_PRIVATE"), Some(2));
        assert_eq!(lookup("MAP_ANONYMOUS"), Some(0x20));
        assert_eq!(lookup("MAP_ANON"), Some(0x20));
        assert_eq!(lookup("MAP_FIXED_NOREPLACE"), Some(0x100000));
        assert_eq!(lookup("MADV_DONTNEED"), Some(4));
        assert_eq!(lookup("MADV_GUARD_REMOVE"), Some(103));
        assert_eq!(lookup("MREMAP_MAYMOVE"), Some(1));
        assert_eq!(lookup("MCL_CURRENT"), Some(1));
        assert_eq!(lookup("MLOCK_ONFAULT"), Some(1));
        assert_eq!(lookup("O_CREAT"), Some(0o100));
        assert_eq!(lookup("O_SYNC"), Some(0o4010000));
        assert_eq!(lookup("AT_FDCWD"), Some((-100i64) as u64));
        assert_eq!(lookup("NULL"), Some(0));
        assert_eq!(lookup("S_IRUSR"), Some(0o400));
    }

    #[test]
    fn huge_page_sizes() {
        assert_eq!(lookup("MAP_HUGE_2MB"), Some(21 << 26));
        assert_eq!(lookup("MFD_HUGE_1GB"), Some(30 << 26));
        assert_eq!(lookup("MAP_HUGE_3MB"), None);
        assert_eq!(huge_size_name(21), Some("2MB"));
    }

    #[test]
    fn unknown_names() {
        assert_eq!(lookup("PROT_READX"), None);
        assert_eq!(lookup("prot_read"), None);
        assert_eq!(lookup(""), None);
    }
}
