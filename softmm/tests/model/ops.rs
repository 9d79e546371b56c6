//! The operations of the property test and their proptest strategies.
//!
//! Every address is a page index in the 64-page window and every length a page count, so
//! shrinking works on small numbers and a failing list reads like a script. Ranges are
//! clamped to the window: nothing is ever mapped above it, where the fence VMA lies (as
//! under `linux-run`, whose fence sits right above the probed window).

use proptest::prelude::*;
use softmm::abi::*;

/// Pages in the window.
pub const WINDOW_PAGES: u64 = 64;

/// Protections generated (exec-only is left out: with protection keys Linux makes it
/// unreadable, and gives it a pkey that changes merging).
pub const PROTS: [u64; 6] = [
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    PROT_READ | PROT_WRITE,
    PROT_READ | PROT_EXEC,
    PROT_READ | PROT_WRITE | PROT_EXEC,
];

/// Advice generated, with its name.
pub const ADVICE: [(u64, &str); 20] = [
    (MADV_DONTNEED, "MADV_DONTNEED"),
    (MADV_FREE, "MADV_FREE"),
    (MADV_WILLNEED, "MADV_WILLNEED"),
    (MADV_COLD, "MADV_COLD"),
    (MADV_PAGEOUT, "MADV_PAGEOUT"),
    (MADV_NORMAL, "MADV_NORMAL"),
    (MADV_RANDOM, "MADV_RANDOM"),
    (MADV_SEQUENTIAL, "MADV_SEQUENTIAL"),
    (MADV_DONTFORK, "MADV_DONTFORK"),
    (MADV_DOFORK, "MADV_DOFORK"),
    (MADV_DONTDUMP, "MADV_DONTDUMP"),
    (MADV_DODUMP, "MADV_DODUMP"),
    (MADV_WIPEONFORK, "MADV_WIPEONFORK"),
    (MADV_KEEPONFORK, "MADV_KEEPONFORK"),
    (MADV_HUGEPAGE, "MADV_HUGEPAGE"),
    (MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"),
    (MADV_POPULATE_READ, "MADV_POPULATE_READ"),
    (MADV_POPULATE_WRITE, "MADV_POPULATE_WRITE"),
    (MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL"),
    (MADV_GUARD_REMOVE, "MADV_GUARD_REMOVE"),
];

/// Where a new mapping goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The window page is a hint.
    Hint,
    Fixed,
    NoReplace,
}

/// An extra mmap flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    None,
    Populate,
    Locked,
    NoReserve,
    /// The mapping type MAP_DROPPABLE instead of MAP_PRIVATE/MAP_SHARED.
    Droppable,
}

/// How mremap is asked to work (destination page where one is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Flags 0: resize in place only.
    InPlace,
    MayMove,
    Fixed(u8),
    /// DONTUNMAP with the page as a hint.
    DontUnmap(u8),
    FixedDontUnmap(u8),
}

/// One operation; `page`s are window page indexes, `pages` lengths in pages.
#[derive(Clone, Debug)]
pub enum Op {
    Mmap {
        page: u8,
        pages: u8,
        prot: u8,
        shared: bool,
        place: Place,
        extra: Extra,
    },
    Munmap {
        page: u8,
        pages: u8,
    },
    Mprotect {
        page: u8,
        pages: u8,
        prot: u8,
    },
    Madvise {
        page: u8,
        pages: u8,
        advice: u8,
    },
    Mremap {
        page: u8,
        old: u8,
        new: u8,
        how: How,
    },
    Mlock {
        page: u8,
        pages: u8,
        onfault: bool,
    },
    Munlock {
        page: u8,
        pages: u8,
    },
    /// `mlockall(MCL_CURRENT)`, with MCL_ONFAULT when `onfault`.
    Mlockall {
        onfault: bool,
    },
    Munlockall,
    Write {
        page: u8,
        offset: u16,
        len: u16,
        byte: u8,
    },
    Read {
        page: u8,
        offset: u16,
        len: u16,
    },
}

/// `(window offset, length)` in bytes of `pages` pages at `page`, clamped to the window
/// (a length of 0 stays 0, for the calls' zero-length checks).
pub fn span(page: u8, pages: u8) -> (u64, u64) {
    let page = u64::from(page) % WINDOW_PAGES;
    let pages = u64::from(pages).min(WINDOW_PAGES - page);
    (page * 4096, pages * 4096)
}

/// A window page, mostly in the lower half so that calls meet each other's mappings.
fn page() -> impl Strategy<Value = u8> {
    prop_oneof![3 => 0u8..24, 1 => 0u8..WINDOW_PAGES as u8]
}

fn pages() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 1u8..=6, 2 => 7u8..=16, 1 => Just(0u8)]
}

/// An index into [`PROTS`], read-write most often.
fn prot() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(3u8), 1 => 0u8..PROTS.len() as u8]
}

fn mmap() -> impl Strategy<Value = Op> {
    let place = prop_oneof![
        3 => Just(Place::Fixed),
        1 => Just(Place::Hint),
        1 => Just(Place::NoReplace),
    ];
    let pages = prop_oneof![4 => 2u8..=12, 1 => pages()];
    let extra = prop_oneof![
        6 => Just(Extra::None),
        1 => Just(Extra::Populate),
        1 => Just(Extra::Locked),
        1 => Just(Extra::NoReserve),
        1 => Just(Extra::Droppable),
    ];
    let shared = prop_oneof![4 => Just(false), 1 => Just(true)];
    (page(), pages, prot(), shared, place, extra).prop_map(
        |(page, pages, prot, shared, place, extra)| Op::Mmap {
            page,
            pages,
            prot,
            shared,
            place,
            extra,
        },
    )
}

fn mremap() -> impl Strategy<Value = Op> {
    let how = prop_oneof![
        Just(How::InPlace),
        Just(How::MayMove),
        page().prop_map(How::Fixed),
        page().prop_map(How::DontUnmap),
        page().prop_map(How::FixedDontUnmap),
    ];
    // DONTUNMAP needs equal lengths: mostly give it that.
    let same = prop_oneof![3 => Just(true), 1 => Just(false)];
    (page(), 1u8..=8, pages(), how, same).prop_map(|(page, old, new, how, same)| {
        let dontunmap = matches!(how, How::DontUnmap(_) | How::FixedDontUnmap(_));
        let new = if dontunmap && same { old } else { new };
        Op::Mremap {
            page,
            old,
            new,
            how,
        }
    })
}

fn access() -> impl Strategy<Value = (u8, u16, u16)> {
    let len = prop_oneof![2 => 1u16..64, 1 => Just(4096u16), 1 => 1u16..12000];
    (page(), 0u16..4096, len)
}

/// One operation, mappings and writes weighted up so that there is memory to act on.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => mmap(),
        2 => (page(), pages()).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        4 => (page(), pages(), prot()).prop_map(|(page, pages, prot)| Op::Mprotect {
            page,
            pages,
            prot
        }),
        4 => (page(), pages(), 0u8..ADVICE.len() as u8).prop_map(|(page, pages, advice)| {
            Op::Madvise {
                page,
                pages,
                advice,
            }
        }),
        4 => mremap(),
        2 => (page(), pages(), any::<bool>()).prop_map(|(page, pages, onfault)| Op::Mlock {
            page,
            pages,
            onfault
        }),
        1 => (page(), pages()).prop_map(|(page, pages)| Op::Munlock { page, pages }),
        1 => any::<bool>().prop_map(|onfault| Op::Mlockall { onfault }),
        1 => Just(Op::Munlockall),
        5 => (access(), any::<u8>()).prop_map(|((page, offset, len), byte)| Op::Write {
            page,
            offset,
            len,
            byte
        }),
        1 => access().prop_map(|(page, offset, len)| Op::Read { page, offset, len }),
    ]
}

/// A case: one to three fixed mappings in the lower part of the window (so that the
/// other calls meet memory), then up to 48 ops.
pub fn case() -> impl Strategy<Value = Vec<Op>> {
    let first = (
        0u8..16,
        4u8..=16,
        prot(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(page, pages, prot, shared)| Op::Mmap {
            page,
            pages,
            prot,
            shared,
            place: Place::Fixed,
            extra: Extra::None,
        });
    (
        prop::collection::vec(first, 1..=3),
        prop::collection::vec(op(), 1..48),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}
