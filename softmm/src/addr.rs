//! Address vocabulary and the x86-64 user address-space constants Linux uses.

/// Size of a base page.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Size of a PMD-mapped huge page.
pub const HUGE_SIZE: u64 = 2 << 20;
/// End of the user address space with 4-level paging (`TASK_SIZE`: 2^47 - one page).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Top of the top-down mmap area with ASLR off (below the stack gap).
pub const MMAP_BASE: u64 = 0x7fff_f7ff_f000;
/// Lowest address a mapping may use (`vm.mmap_min_addr` as most distributions set it).
pub const MMAP_MIN_ADDR: u64 = 65536;
/// Default `vm.max_map_count`.
pub const MAX_MAP_COUNT: usize = 65530;

/// A user virtual address (any value; helpers below do the page arithmetic).
pub type VirtAddr = u64;

/// Round `v` down to a page boundary.
#[inline]
pub const fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Round `v` up to a page boundary, `None` on overflow.
#[inline]
pub const fn page_up(v: u64) -> Option<u64> {
    match v.checked_add(PAGE_SIZE - 1) {
        Some(x) => Some(x & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// Whether `v` is page aligned.
#[inline]
pub const fn is_page_aligned(v: u64) -> bool {
    v & (PAGE_SIZE - 1) == 0
}

/// Number of pages in `len` bytes (`len` page aligned).
#[inline]
pub const fn pages(len: u64) -> u64 {
    len >> PAGE_SHIFT
}
