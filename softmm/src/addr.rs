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

/// A page-aligned user virtual address: a VMA boundary, the page a page-table entry
/// maps, the bounds of a page-table walk.
///
/// Alignment is checked where one is made ([`PageAddr::new`], [`PageAddr::down`],
/// [`PageAddr::up`], and the arithmetic below, which adds only whole pages), so code
/// that holds one never re-checks it. It orders and compares with plain addresses, so
/// `vma.start <= addr && addr < vma.end` reads as it would in C.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PageAddr(u64);

impl PageAddr {
    /// Address zero.
    pub const ZERO: PageAddr = PageAddr(0);

    /// `v` if it is page aligned.
    #[inline]
    pub const fn new(v: u64) -> Option<PageAddr> {
        if is_page_aligned(v) {
            Some(PageAddr(v))
        } else {
            None
        }
    }

    /// The page that contains `v`.
    #[inline]
    pub const fn down(v: u64) -> PageAddr {
        PageAddr(page_down(v))
    }

    /// `v` rounded up to a page boundary, `None` on overflow.
    #[inline]
    pub const fn up(v: u64) -> Option<PageAddr> {
        match page_up(v) {
            Some(x) => Some(PageAddr(x)),
            None => None,
        }
    }

    /// The address of virtual page number `vpn`.
    #[inline]
    pub const fn from_vpn(vpn: u64) -> PageAddr {
        PageAddr(vpn << PAGE_SHIFT)
    }

    /// The address as a plain integer.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The virtual page number.
    #[inline]
    pub const fn vpn(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }

    /// The next page.
    #[inline]
    pub const fn next_page(self) -> PageAddr {
        PageAddr(self.0 + PAGE_SIZE)
    }

    /// `n` pages further on.
    #[inline]
    pub const fn add_pages(self, n: u64) -> PageAddr {
        PageAddr(self.0 + (n << PAGE_SHIFT))
    }

    /// `len` bytes further on, `None` when `len` is not page aligned or the sum
    /// overflows.
    #[inline]
    pub const fn checked_add(self, len: u64) -> Option<PageAddr> {
        match self.0.checked_add(len) {
            Some(x) if is_page_aligned(len) => Some(PageAddr(x)),
            _ => None,
        }
    }

    /// Number of pages from `self` up to `end` (`end >= self`).
    #[inline]
    pub const fn pages_to(self, end: PageAddr) -> u64 {
        (end.0 - self.0) >> PAGE_SHIFT
    }
}

impl From<PageAddr> for u64 {
    fn from(a: PageAddr) -> u64 {
        a.0
    }
}

/// The byte distance between two page addresses (a page-aligned length).
impl core::ops::Sub for PageAddr {
    type Output = u64;
    #[inline]
    fn sub(self, rhs: PageAddr) -> u64 {
        self.0 - rhs.0
    }
}

/// `len` bytes further on; `len` must be page aligned (checked).
impl core::ops::Add<u64> for PageAddr {
    type Output = PageAddr;
    #[inline]
    fn add(self, len: u64) -> PageAddr {
        assert!(
            is_page_aligned(len),
            "PageAddr + {len:#x}: not a page multiple"
        );
        PageAddr(self.0 + len)
    }
}

/// `len` bytes back; `len` must be page aligned (checked).
impl core::ops::Sub<u64> for PageAddr {
    type Output = PageAddr;
    #[inline]
    fn sub(self, len: u64) -> PageAddr {
        assert!(
            is_page_aligned(len),
            "PageAddr - {len:#x}: not a page multiple"
        );
        PageAddr(self.0 - len)
    }
}

impl PartialEq<u64> for PageAddr {
    #[inline]
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl PartialEq<PageAddr> for u64 {
    #[inline]
    fn eq(&self, other: &PageAddr) -> bool {
        *self == other.0
    }
}

impl PartialOrd<u64> for PageAddr {
    #[inline]
    fn partial_cmp(&self, other: &u64) -> Option<core::cmp::Ordering> {
        Some(self.0.cmp(other))
    }
}

impl PartialOrd<PageAddr> for u64 {
    #[inline]
    fn partial_cmp(&self, other: &PageAddr) -> Option<core::cmp::Ordering> {
        Some(self.cmp(&other.0))
    }
}

impl core::fmt::Debug for PageAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl core::fmt::LowerHex for PageAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_addr_is_checked_where_made() {
        assert_eq!(PageAddr::new(0x1001), None);
        assert_eq!(PageAddr::new(0x1000), Some(PageAddr::down(0x1fff)));
        assert_eq!(PageAddr::up(0x1001).map(PageAddr::get), Some(0x2000));
        assert_eq!(PageAddr::up(u64::MAX), None);
        let a = PageAddr::down(0x5000);
        assert_eq!(a.checked_add(0x800), None);
        assert_eq!(a.checked_add(0x1000), Some(a.next_page()));
        assert_eq!(a.add_pages(3) - a, 0x3000);
        assert_eq!(a.pages_to(a + 0x4000), 4);
        assert_eq!(PageAddr::from_vpn(a.vpn()), a);
        assert!(a < 0x5001 && 0x4fff < a && a == 0x5000);
        assert_eq!(format!("{a:?} {a:08x}"), "0x5000 00005000");
    }

    #[test]
    #[should_panic(expected = "not a page multiple")]
    fn page_addr_refuses_a_partial_page() {
        let _ = PageAddr::down(0x5000) + 12;
    }
}
