//! Paging geometry as a type parameter, so tests can shrink tables, and the [`Level`]s
//! of a table.

/// A page-table level: 1 is the PTE level (its leaves map base pages), 2 the PMD level
/// (a leaf there maps a huge page), up to [`Geometry::LEVELS`] at the root.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Level(u8);

impl Level {
    /// The leaf table's level.
    pub const PTE: Level = Level(1);
    /// The level above the leaf table.
    pub const PMD: Level = Level(2);

    /// Level `n` (1 = PTE).
    ///
    /// # Panics
    ///
    /// When `n` is 0 or above 255.
    #[inline]
    pub const fn new(n: usize) -> Level {
        assert!(n >= 1 && n <= u8::MAX as usize, "a level is 1..=255");
        Level(n as u8)
    }

    /// The level's number (1 = PTE).
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// The level of the tables this level's entries point to.
    ///
    /// # Panics
    ///
    /// At the PTE level, which points to no table.
    #[inline]
    pub fn below(self) -> Level {
        assert!(self > Level::PTE, "the PTE level has no level below");
        Level(self.0 - 1)
    }

    /// From `top` down to `bottom`, both included.
    #[inline]
    pub fn down(top: Level, bottom: Level) -> impl Iterator<Item = Level> {
        (bottom.0..=top.0).rev().map(Level)
    }
}

/// The shape of a page table. Levels are numbered from 1 (the leaf table) to `LEVELS`
/// (the root).
pub trait Geometry: Send + Sync + 'static {
    /// Number of levels.
    const LEVELS: usize;
    /// log2 of the number of entries per table.
    const BITS_PER_LEVEL: u32;
    /// log2 of the base page size.
    const PAGE_SHIFT: u32;

    /// Entries per table.
    const ENTRIES: usize = 1 << Self::BITS_PER_LEVEL;

    /// Shift of the address bits that index a table at `level`.
    #[inline]
    fn shift(level: Level) -> u32 {
        Self::PAGE_SHIFT + Self::BITS_PER_LEVEL * (level.get() as u32 - 1)
    }

    /// The root's level.
    #[inline]
    fn root() -> Level {
        Level::new(Self::LEVELS)
    }

    /// Bytes covered by one entry at `level`.
    #[inline]
    fn entry_span(level: Level) -> u64 {
        1u64 << Self::shift(level)
    }

    /// Index of `va` in the table at `level`.
    #[inline]
    fn index(va: u64, level: Level) -> usize {
        ((va >> Self::shift(level)) as usize) & (Self::ENTRIES - 1)
    }

    /// One past the highest address the geometry can map.
    #[inline]
    fn top() -> u64 {
        1u64 << Self::shift(Level::new(Self::LEVELS + 1)).min(63)
    }
}

/// x86-64 four-level paging with 4 KiB pages: 512 entries per table, 48-bit addresses.
#[derive(Debug)]
pub struct X86_4K;

impl Geometry for X86_4K {
    const LEVELS: usize = 4;
    const BITS_PER_LEVEL: u32 = 9;
    const PAGE_SHIFT: u32 = 12;
}

/// A tiny geometry for tests and model checking: 2 levels of 4 entries.
#[derive(Debug)]
pub struct Tiny;

impl Geometry for Tiny {
    const LEVELS: usize = 2;
    const BITS_PER_LEVEL: u32 = 2;
    const PAGE_SHIFT: u32 = 12;
}

/// The geometry of model-checking builds: four levels like x86-64, but 4 entries per
/// table (1 MiB of address space), so the checkers track a few atomics per table.
#[derive(Debug)]
pub struct Model;

impl Geometry for Model {
    const LEVELS: usize = 4;
    const BITS_PER_LEVEL: u32 = 2;
    const PAGE_SHIFT: u32 = 12;
}

/// The geometry address spaces use: x86-64, or [`Model`] under loom/shuttle.
#[cfg(not(any(loom, shuttle)))]
pub type MmGeometry = X86_4K;
/// The geometry address spaces use: x86-64, or [`Model`] under loom/shuttle.
#[cfg(any(loom, shuttle))]
pub type MmGeometry = Model;
