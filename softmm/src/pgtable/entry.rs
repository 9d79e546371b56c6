//! Page-table entry encoding: x86-64 bits plus software bits in the available ranges.
//!
//! [`Pte`] is the raw 64-bit word (copyable); [`PteView`] its decoded meaning. Entries
//! in table pages are only touched through atomic loads/stores/swaps (see `PageTable`).
//! A zero word is "none" at every level.
//!
//! A leaf is *present* (the software MMU may use it) or *protnone* (not present, but it
//! still holds its frame: a `PROT_NONE` VMA's pages keep their contents and come back
//! when the protection is restored, as Linux's `_PAGE_PROTNONE`).

use super::Level;
use crate::{
    addr::{PAGE_SHIFT, PAGE_SIZE},
    frame::Pfn,
};

bitflags::bitflags! {
    /// The flag bits of an entry (everything but the frame number): x86-64's hardware
    /// bits, and softmm's software bits in the ranges the hardware leaves to the OS.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct PteFlags: u64 {
        /// Present.
        const P = 1 << 0;
        /// Writable.
        const W = 1 << 1;
        /// User accessible.
        const U = 1 << 2;
        /// Accessed (set by the MMU on use).
        const A = 1 << 5;
        /// Dirty (set by the MMU on write).
        const D = 1 << 6;
        /// Page size: a leaf at PMD/PUD level.
        const PS = 1 << 7;
        /// Software: maps a frame that is not reference counted (the zero frame).
        const SPECIAL = 1 << 9;
        /// Software: a not-present leaf that still holds its frame (PROT_NONE).
        const PROTNONE = 1 << 10;
        /// Software: soft-dirty.
        const SOFT_DIRTY = 1 << 11;
        /// Software: a guard-region marker (MADV_GUARD_INSTALL): not present, no frame;
        /// any access is SIGSEGV; survives MADV_DONTNEED, removed by munmap and
        /// MADV_GUARD_REMOVE.
        const GUARD = 1 << 58;
        /// No-execute.
        const NX = 1 << 63;
    }
}

/// Physical frame number field (bits 12–51).
pub const PFN_MASK: u64 = ((1u64 << 52) - 1) & !(PAGE_SIZE - 1);

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
        flags: PteFlags,
        /// A PS leaf above level 1.
        huge: bool,
    },
}

impl Pte {
    /// The none entry.
    pub const NONE: Pte = Pte(0);

    /// A table entry pointing at `child`.
    pub fn table(child: Pfn) -> Pte {
        let f = PteFlags::P | PteFlags::W | PteFlags::U | PteFlags::A;
        Pte(((child.0 as u64) << PAGE_SHIFT) | f.bits())
    }

    /// A leaf entry for `pfn` with `flags` (must include `P` or `PROTNONE`).
    pub fn leaf(pfn: Pfn, flags: PteFlags) -> Pte {
        debug_assert!(flags.intersects(PteFlags::P | PteFlags::PROTNONE));
        Pte(((pfn.0 as u64) << PAGE_SHIFT) | (flags.bits() & !PFN_MASK))
    }

    /// A guard-region marker.
    pub const GUARD_MARKER: Pte = Pte(PteFlags::GUARD.bits());

    /// Whether this is a guard-region marker.
    #[inline]
    pub fn is_guard(self) -> bool {
        self == Self::GUARD_MARKER
    }

    /// Whether this leaf holds a frame (present or protnone), as opposed to a marker.
    #[inline]
    pub fn has_frame(self) -> bool {
        self.flags().intersects(PteFlags::P | PteFlags::PROTNONE)
    }

    /// Whether this is the none entry.
    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Whether the MMU may use it.
    #[inline]
    pub fn present(self) -> bool {
        self.has(PteFlags::P)
    }

    /// The frame number field.
    #[inline]
    pub fn pfn(self) -> Pfn {
        Pfn(((self.0 & PFN_MASK) >> PAGE_SHIFT) as u32)
    }

    /// Flag bits.
    #[inline]
    pub fn flags(self) -> PteFlags {
        PteFlags::from_bits_retain(self.0 & !PFN_MASK)
    }

    /// Whether `bits` are all set.
    #[inline]
    pub fn has(self, bits: PteFlags) -> bool {
        self.flags().contains(bits)
    }

    /// Same frame, different flags.
    #[inline]
    pub fn with_flags(self, flags: PteFlags) -> Pte {
        Pte((self.0 & PFN_MASK) | (flags.bits() & !PFN_MASK))
    }

    /// Decode at `level`.
    pub fn decode(self, level: Level) -> PteView {
        if self.is_none() {
            PteView::None
        } else if level > Level::PTE && !self.has(PteFlags::PS) && self.present() {
            PteView::Table(self.pfn())
        } else {
            PteView::Leaf {
                pfn: self.pfn(),
                flags: self.flags(),
                huge: level > Level::PTE,
            }
        }
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}
