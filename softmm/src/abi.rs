//! Linux x86-64 system-call constants (uapi values) taken by the mm system calls.

#![allow(missing_docs)]

// mmap / mprotect protection bits.
pub const PROT_NONE: u64 = 0x0;
pub const PROT_READ: u64 = 0x1;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;
pub const PROT_SEM: u64 = 0x8;
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
pub const PROT_GROWSUP: u64 = 0x0200_0000;

// mmap flags.
pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_DROPPABLE: u64 = 0x08;
pub const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_ABOVE4G: u64 = 0x80;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_DENYWRITE: u64 = 0x800;
pub const MAP_EXECUTABLE: u64 = 0x1000;
pub const MAP_LOCKED: u64 = 0x2000;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_NONBLOCK: u64 = 0x10000;
pub const MAP_STACK: u64 = 0x20000;
pub const MAP_HUGETLB: u64 = 0x40000;
pub const MAP_SYNC: u64 = 0x80000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
pub const MAP_UNINITIALIZED: u64 = 0x400_0000;
pub const MAP_HUGE_SHIFT: u32 = 26;
pub const MAP_HUGE_MASK: u64 = 0x3f;
/// Flags MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK plus MAP_SYNC).
pub const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT
    | MAP_HUGE_MASK << MAP_HUGE_SHIFT;

// madvise advice.
pub const MADV_NORMAL: u64 = 0;
pub const MADV_RANDOM: u64 = 1;
pub const MADV_SEQUENTIAL: u64 = 2;
pub const MADV_WILLNEED: u64 = 3;
pub const MADV_DONTNEED: u64 = 4;
pub const MADV_FREE: u64 = 8;
pub const MADV_REMOVE: u64 = 9;
pub const MADV_DONTFORK: u64 = 10;
pub const MADV_DOFORK: u64 = 11;
pub const MADV_MERGEABLE: u64 = 12;
pub const MADV_UNMERGEABLE: u64 = 13;
pub const MADV_HUGEPAGE: u64 = 14;
pub const MADV_NOHUGEPAGE: u64 = 15;
pub const MADV_DONTDUMP: u64 = 16;
pub const MADV_DODUMP: u64 = 17;
pub const MADV_WIPEONFORK: u64 = 18;
pub const MADV_KEEPONFORK: u64 = 19;
pub const MADV_COLD: u64 = 20;
pub const MADV_PAGEOUT: u64 = 21;
pub const MADV_POPULATE_READ: u64 = 22;
pub const MADV_POPULATE_WRITE: u64 = 23;
pub const MADV_DONTNEED_LOCKED: u64 = 24;
pub const MADV_COLLAPSE: u64 = 25;
pub const MADV_HWPOISON: u64 = 100;
pub const MADV_SOFT_OFFLINE: u64 = 101;
pub const MADV_GUARD_INSTALL: u64 = 102;
pub const MADV_GUARD_REMOVE: u64 = 103;

// mremap flags.
pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;

// mlock2 / mlockall.
pub const MLOCK_ONFAULT: u64 = 1;
pub const MCL_CURRENT: u64 = 1;
pub const MCL_FUTURE: u64 = 2;
pub const MCL_ONFAULT: u64 = 4;

// msync.
pub const MS_ASYNC: u64 = 1;
pub const MS_INVALIDATE: u64 = 2;
pub const MS_SYNC: u64 = 4;

// open flags (x86-64).
pub const O_RDONLY: u64 = 0;
pub const O_WRONLY: u64 = 1;
pub const O_RDWR: u64 = 2;
pub const O_ACCMODE: u64 = 3;
pub const O_CREAT: u64 = 0o100;
pub const O_EXCL: u64 = 0o200;
pub const O_TRUNC: u64 = 0o1000;
pub const O_APPEND: u64 = 0o2000;
pub const O_DIRECTORY: u64 = 0o200000;
pub const O_PATH: u64 = 0o10000000;
pub const O_TMPFILE: u64 = 0o20200000;

// memfd_create flags.
pub const MFD_CLOEXEC: u64 = 0x1;
pub const MFD_ALLOW_SEALING: u64 = 0x2;
pub const MFD_HUGETLB: u64 = 0x4;
pub const MFD_NOEXEC_SEAL: u64 = 0x8;
pub const MFD_EXEC: u64 = 0x10;
/// `NAME_MAX - strlen("memfd:")`.
pub const MFD_NAME_MAX_LEN: usize = 249;

// clone flags.
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_THREAD: u64 = 0x10000;

bitflags::bitflags! {
    /// The `prot` argument of mmap and mprotect (`PROT_*`). Unknown bits are kept, so
    /// that the calls can reject them with Linux's errno.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct Prot: u64 {
        const READ = PROT_READ;
        const WRITE = PROT_WRITE;
        const EXEC = PROT_EXEC;
        const SEM = PROT_SEM;
        const GROWSDOWN = PROT_GROWSDOWN;
        const GROWSUP = PROT_GROWSUP;
    }
}

bitflags::bitflags! {
    /// The flag bits of mmap's `flags` (`MAP_*`), without the mapping type in the low
    /// four bits, which [`MapType`] decodes. Unknown bits are kept (MAP_SHARED_VALIDATE
    /// rejects them, the legacy types ignore them).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct MapFlags: u64 {
        const FIXED = MAP_FIXED;
        const ANONYMOUS = MAP_ANONYMOUS;
        /// `MAP_32BIT`.
        const BELOW_2G = MAP_32BIT;
        const ABOVE4G = MAP_ABOVE4G;
        const GROWSDOWN = MAP_GROWSDOWN;
        const DENYWRITE = MAP_DENYWRITE;
        const EXECUTABLE = MAP_EXECUTABLE;
        const LOCKED = MAP_LOCKED;
        const NORESERVE = MAP_NORESERVE;
        const POPULATE = MAP_POPULATE;
        const NONBLOCK = MAP_NONBLOCK;
        const STACK = MAP_STACK;
        const HUGETLB = MAP_HUGETLB;
        const SYNC = MAP_SYNC;
        const FIXED_NOREPLACE = MAP_FIXED_NOREPLACE;
        const UNINITIALIZED = MAP_UNINITIALIZED;
        /// The hugetlb page size field (`MAP_HUGE_*`).
        const HUGE_SIZE = MAP_HUGE_MASK << MAP_HUGE_SHIFT;
    }
}

impl MapFlags {
    /// The flag bits of an mmap `flags` word (the type bits dropped).
    #[inline]
    pub const fn of(flags: u64) -> MapFlags {
        MapFlags::from_bits_retain(flags & !MAP_TYPE)
    }

    /// What MAP_SHARED_VALIDATE accepts besides the type (`LEGACY_MAP_MASK`, whose
    /// type bits [`MapType`] checks, plus MAP_SYNC).
    pub const VALIDATED: MapFlags = MapFlags::of(LEGACY_MAP_MASK).union(MapFlags::SYNC);
}

/// The mapping type: the low four bits of mmap's `flags` (`MAP_TYPE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapType {
    /// `MAP_SHARED`.
    Shared,
    /// `MAP_PRIVATE`.
    Private,
    /// `MAP_SHARED_VALIDATE`: shared, with unknown flags rejected.
    SharedValidate,
    /// `MAP_DROPPABLE`.
    Droppable,
    /// Any other value (EINVAL where the type is checked).
    Invalid,
}

impl MapType {
    /// The type of an mmap `flags` word.
    #[inline]
    pub const fn of(flags: u64) -> MapType {
        match flags & MAP_TYPE {
            MAP_SHARED => MapType::Shared,
            MAP_PRIVATE => MapType::Private,
            MAP_SHARED_VALIDATE => MapType::SharedValidate,
            MAP_DROPPABLE => MapType::Droppable,
            _ => MapType::Invalid,
        }
    }

    /// MAP_SHARED or MAP_SHARED_VALIDATE.
    #[inline]
    pub const fn is_shared(self) -> bool {
        matches!(self, MapType::Shared | MapType::SharedValidate)
    }
}

bitflags::bitflags! {
    /// The `flags` argument of mremap (`MREMAP_*`). Unknown bits are kept, so that
    /// mremap can reject them.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct MremapFlags: u64 {
        const MAYMOVE = MREMAP_MAYMOVE;
        const FIXED = MREMAP_FIXED;
        const DONTUNMAP = MREMAP_DONTUNMAP;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mmap_flags_word_splits_into_type_and_flags() {
        let w = MAP_SHARED_VALIDATE | MAP_FIXED | MAP_SYNC;
        assert_eq!(MapType::of(w), MapType::SharedValidate);
        assert!(MapType::of(w).is_shared());
        assert_eq!(MapFlags::of(w), MapFlags::FIXED | MapFlags::SYNC);
        assert!((MapFlags::of(w) - MapFlags::VALIDATED).is_empty());
        // An unknown bit is kept, so MAP_SHARED_VALIDATE can refuse it.
        let unknown = MapFlags::of(MAP_PRIVATE | 0x200);
        assert_eq!(
            unknown - MapFlags::VALIDATED,
            MapFlags::from_bits_retain(0x200)
        );
        assert_eq!(MapType::of(0x4), MapType::Invalid);
        assert_eq!(
            MapType::of(MAP_DROPPABLE | MAP_ANONYMOUS),
            MapType::Droppable
        );
    }

    #[test]
    fn prot_and_mremap_flags_keep_unknown_bits() {
        let p = Prot::from_bits_retain(PROT_READ | 0x40);
        assert_eq!(p - Prot::all(), Prot::from_bits_retain(0x40));
        let m = MremapFlags::from_bits_retain(MREMAP_MAYMOVE | 8);
        assert!(!(m - MremapFlags::all()).is_empty());
    }
}
