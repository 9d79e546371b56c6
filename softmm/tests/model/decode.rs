//! Op lists from raw bytes, for the differential fuzz target (`fuzz/`) and the replay of
//! its kept inputs in `model.rs`: every byte string decodes to a valid case, and a small
//! change to the bytes is a small change to the ops, so the fuzzer's mutations stay
//! meaningful.
//!
//! The first byte's low bit chooses whether contents are compared after every op; then
//! each op takes five bytes `[kind, a, b, c, d]` (a short tail is padded with zeros), at
//! most [`MAX_OPS`] of them. Values stay in the ranges the proptest strategies of
//! [`ops`](super::ops) generate: protections and advice index their tables, mremap moves
//! 1 to 8 pages, accesses stay within 12,000 bytes.

use super::ops::{ADVICE, Extra, How, Op, PROTS, Place};

/// The most ops one input decodes to.
pub const MAX_OPS: usize = 64;

/// The op list and the "contents after every op" switch encoded by `data`.
pub fn ops(data: &[u8]) -> (Vec<Op>, bool) {
    let every = data.first().is_some_and(|b| b & 1 == 1);
    let ops = data
        .get(1..)
        .unwrap_or_default()
        .chunks(5)
        .take(MAX_OPS)
        .map(|c| {
            let mut b = [0u8; 5];
            b[..c.len()].copy_from_slice(c);
            op(b)
        })
        .collect();
    (ops, every)
}

/// One op from its five bytes.
fn op([kind, a, b, c, d]: [u8; 5]) -> Op {
    let prot = c % PROTS.len() as u8;
    match kind % 9 {
        0 => Op::Mmap {
            page: a,
            pages: b % 17,
            prot,
            shared: d & 1 == 1,
            place: [Place::Fixed, Place::Hint, Place::NoReplace][usize::from(d >> 1) % 3],
            extra: [
                Extra::None,
                Extra::Populate,
                Extra::Locked,
                Extra::NoReserve,
                Extra::Droppable,
            ][usize::from(d >> 3) % 5],
        },
        1 => Op::Munmap {
            page: a,
            pages: b % 17,
        },
        2 => Op::Mprotect {
            page: a,
            pages: b % 17,
            prot,
        },
        3 => Op::Madvise {
            page: a,
            pages: b % 17,
            advice: c % ADVICE.len() as u8,
        },
        4 => Op::Mremap {
            page: a,
            old: 1 + b % 8,
            new: c % 17,
            how: match d % 5 {
                0 => How::InPlace,
                1 => How::MayMove,
                2 => How::Fixed(d >> 3),
                3 => How::DontUnmap(d >> 3),
                _ => How::FixedDontUnmap(d >> 3),
            },
        },
        5 => Op::Mlock {
            page: a,
            pages: b % 17,
            onfault: c & 1 == 1,
        },
        6 => Op::Munlock {
            page: a,
            pages: b % 17,
        },
        7 => Op::Write {
            page: a,
            offset: u16::from(b) * 16,
            len: 1 + u16::from(c) * 47,
            byte: d,
        },
        _ => Op::Read {
            page: a,
            offset: u16::from(b) * 16,
            len: 1 + u16::from(c) * 47,
        },
    }
}
