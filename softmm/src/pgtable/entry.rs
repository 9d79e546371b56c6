//! Page-table entry encoding: x86-64 bits plus software bits in the available ranges.
//!
//! [`Pte`] is the raw 64-bit word (copyable); [`PteView`] its decoded meaning. Entries
//! in table pages are only touched through atomic loads/stores/swaps (see `table.rs`).
//! A zero word is "none" at every level.
//!
//! A leaf is *present* (the software MMU may use it) or *protnone* (not present, but it
//! still holds its frame: a `PROT_NONE` VMA's pages keep their contents and come back
//! when the protection is restored, as Linux's `_PAGE_PROTNONE`).

use crate::frame::Pfn;

/// Present.
pub const P: u64 = 1 << 0;
/// Writable.
pub const W: u64 = 1 << 1;
/// User accessible.
pub const U: u64 = 1 << 2;
/// Accessed (set by the MMU on use).
pub const A: u64 = 1 << 5;
/// Dirty (set by the MMU on write).
pub const D: u64 = 1 << 6;
/// Page size: a leaf at PMD/PUD level.
pub const PS: u64 = 1 << 7;
/// Software: maps a frame that is not reference counted (the zero frame).
pub const SPECIAL: u64 = 1 << 9;
/// Software: a not-present leaf that still holds its frame (PROT_NONE).
pub const PROTNONE: u64 = 1 << 10;
/// Software: soft-dirty.
pub const SOFT_DIRTY: u64 = 1 << 11;
/// Software: a guard-region marker (MADV_GUARD_INSTALL): not present, no frame; any
/// access is SIGSEGV; survives MADV_DONTNEED, removed by munmap and MADV_GUARD_REMOVE.
pub const GUARD: u64 = 1 << 58;
/// No-execute.
pub const NX: u64 = 1 << 63;
/// Physical frame number field (bits 12–51).
pub const PFN_MASK: u64 = ((1u64 << 52) - 1) & !0xfff;

/// A raw entry value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

/// The decoded meaning of an entry at a given level.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PteView {
    /// Nothing mapped.
    None,
    /// Points to a next-level table.
    Table(Pfn),
    /// Maps a frame (4 KiB at level 1, 2 MiB at level 2 with `huge`).
    Leaf {
        /// The frame.
        pfn: Pfn,
        /// Flag bits (everything but the pfn).
        flags: u64,
        /// A PS leaf above level 1.
        huge: bool,
    },
}

impl Pte {
    /// The none entry.
    pub const NONE: Pte = Pte(0);

    /// A table entry pointing at `child`.
    pub fn table(child: Pfn) -> Pte {
        Pte(((child.0 as u64) << 12) | P | W | U | A)
    }

    /// A leaf entry for `pfn` with `flags` (must include `P` or `PROTNONE`).
    pub fn leaf(pfn: Pfn, flags: u64) -> Pte {
        debug_assert!(flags & (P | PROTNONE) != 0);
        Pte(((pfn.0 as u64) << 12) | (flags & !PFN_MASK))
    }

    /// A guard-region marker.
    pub const GUARD_MARKER: Pte = Pte(GUARD);

    /// Whether this is a guard-region marker.
    #[inline]
    pub fn is_guard(self) -> bool {
        self.0 == GUARD
    }

    /// Whether this leaf holds a frame (present or protnone), as opposed to a marker.
    #[inline]
    pub fn has_frame(self) -> bool {
        self.0 & (P | PROTNONE) != 0
    }

    /// Whether this is the none entry.
    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Whether the MMU may use it.
    #[inline]
    pub fn present(self) -> bool {
        self.0 & P != 0
    }

    /// The frame number field.
    #[inline]
    pub fn pfn(self) -> Pfn {
        Pfn(((self.0 & PFN_MASK) >> 12) as u32)
    }

    /// Flag bits.
    #[inline]
    pub fn flags(self) -> u64 {
        self.0 & !PFN_MASK
    }

    /// Whether `bits` are all set.
    #[inline]
    pub fn has(self, bits: u64) -> bool {
        self.0 & bits == bits
    }

    /// Same frame, different flags.
    #[inline]
    pub fn with_flags(self, flags: u64) -> Pte {
        Pte((self.0 & PFN_MASK) | (flags & !PFN_MASK))
    }

    /// Decode at `level` (1 = PTE level).
    pub fn decode(self, level: usize) -> PteView {
        if self.is_none() {
            PteView::None
        } else if level > 1 && self.0 & PS == 0 && self.present() {
            PteView::Table(self.pfn())
        } else {
            PteView::Leaf {
                pfn: self.pfn(),
                flags: self.flags(),
                huge: level > 1,
            }
        }
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}
