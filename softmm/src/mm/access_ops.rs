//! What an emulator asks of its MMU beyond byte copies: typed loads and stores, guest
//! atomics, instruction fetch, probing, and a debugger's forced write.
//!
//! Rules:
//! * Typed loads and stores are byte copies in the guest's byte order (little-endian
//!   for x86-64, big-endian where a guest asks for it); one that crosses a page faults
//!   on the second page after transferring the first page's bytes, as `read`/`write` do.
//! * A guest atomic operates on one naturally aligned word (4 or 8 bytes) with a host
//!   atomic instruction on the frame (x86's `lock` prefix: sequentially consistent). A
//!   misaligned one is `SIGBUS`/`BUS_ADRALN` and touches nothing. It needs write
//!   permission, as a locked instruction does, even when it leaves the value unchanged.
//! * `fetch` is a read that needs execute permission: an NX page faults with
//!   `SEGV_ACCERR`.
//! * `probe` faults every page in for the access and transfers nothing
//!   (`probe_access`).
//! * `write_forced` writes where `ptrace(PTRACE_POKEDATA)` can (`FOLL_FORCE`): through
//!   write permission as usual, and into a private mapping without it (read-only or
//!   even PROT_NONE) by giving the mapping its own copy of the page, which stays
//!   read-only to the guest. A shared mapping without write permission refuses it.

use super::access::{AccessFault, Cpu, Hold, fault_at};
use crate::{
    frame::FramePin,
    mm::fault::{Access, Fault},
    tlb::Perm,
};

/// Typed loads and stores of one integer type in both byte orders.
macro_rules! typed_access {
    ($ty:ty, $le:vis, $read_le:ident, $read_be:ident, $write_le:ident, $write_be:ident) => {
        #[doc = concat!("Load a little-endian `", stringify!($ty), "` from `addr`.")]
        $le fn $read_le(&self, addr: u64) -> Result<$ty, AccessFault> {
            let mut b = [0u8; size_of::<$ty>()];
            self.read(addr, &mut b)?;
            Ok(<$ty>::from_le_bytes(b))
        }

        #[doc = concat!("Load a big-endian `", stringify!($ty), "` from `addr`.")]
        pub fn $read_be(&self, addr: u64) -> Result<$ty, AccessFault> {
            let mut b = [0u8; size_of::<$ty>()];
            self.read(addr, &mut b)?;
            Ok(<$ty>::from_be_bytes(b))
        }

        #[doc = concat!("Store `v` as a little-endian `", stringify!($ty), "` at `addr`.")]
        $le fn $write_le(&self, addr: u64, v: $ty) -> Result<(), AccessFault> {
            self.write(addr, &v.to_le_bytes())
        }

        #[doc = concat!("Store `v` as a big-endian `", stringify!($ty), "` at `addr`.")]
        pub fn $write_be(&self, addr: u64, v: $ty) -> Result<(), AccessFault> {
            self.write(addr, &v.to_be_bytes())
        }
    };
}

/// A guest read-modify-write on an aligned word; `$op(word, operand)` returns the old
/// value (host order), converted from and to the guest's little-endian order.
macro_rules! guest_atomic {
    ($name:ident, $ty:ty, $word:ident, $doc:literal, |$w:ident, $v:ident| $op:expr) => {
        #[doc = $doc]
        ///
        /// Returns the value the word held before. `SIGBUS` (`BUS_ADRALN`) when `addr` is
        /// not aligned to the word's size.
        pub fn $name(&self, addr: u64, $v: $ty) -> Result<$ty, AccessFault> {
            self.atomic(addr, size_of::<$ty>(), |frame, off| {
                let $w = frame.$word(off);
                let $v = $v.to_le();
                <$ty>::from_le($op)
            })
        }
    };
}

impl Cpu {
    /// Load the byte at `addr`.
    pub fn read_u8(&self, addr: u64) -> Result<u8, AccessFault> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    /// Store `v` at `addr`.
    pub fn write_u8(&self, addr: u64, v: u8) -> Result<(), AccessFault> {
        self.write(addr, &[v])
    }

    typed_access!(
        u16,
        pub,
        read_u16_le,
        read_u16_be,
        write_u16_le,
        write_u16_be
    );
    typed_access!(
        u32,
        pub,
        read_u32_le,
        read_u32_be,
        write_u32_le,
        write_u32_be
    );
    typed_access!(u64, pub(super), read_u64_slow, read_u64_be, write_u64_slow, write_u64_be);

    /// Load a little-endian `u64` from `addr` (an aligned one that hits the TLB is one
    /// load; the hit proves the alignment, so `off & !7` is `off`).
    #[inline]
    pub fn read_u64_le(&self, addr: u64) -> Result<u64, AccessFault> {
        match self.tlb_hit(addr, Perm::READ, 8, |pin, off| pin.load_u64(off & !7)) {
            Some(v) => Ok(v),
            None => self.read_u64_slow(addr),
        }
    }

    /// Store `v` as a little-endian `u64` at `addr` (an aligned one that hits the TLB is
    /// one store; as in `read_u64_le`, `off & !7` is `off`).
    #[inline]
    pub fn write_u64_le(&self, addr: u64, v: u64) -> Result<(), AccessFault> {
        match self.tlb_hit(addr, Perm::WRITE, 8, |pin, off| pin.store_u64(off & !7, v)) {
            Some(()) => Ok(()),
            None => self.write_u64_slow(addr, v),
        }
    }

    // SeqCst: a guest atomic is a locked x86 instruction, a full barrier on both sides.
    guest_atomic!(
        xchg_u32,
        u32,
        word_u32,
        "Exchange the little-endian `u32` at `addr` for `v`.",
        |w, v| w.swap(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        xchg_u64,
        u64,
        word_u64,
        "Exchange the little-endian `u64` at `addr` for `v`.",
        |w, v| w.swap(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_add_u32,
        u32,
        word_u32,
        "Add `v` to the little-endian `u32` at `addr` (wrapping).",
        |w, v| w.fetch_add(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_add_u64,
        u64,
        word_u64,
        "Add `v` to the little-endian `u64` at `addr` (wrapping).",
        |w, v| w.fetch_add(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_and_u32,
        u32,
        word_u32,
        "AND `v` into the little-endian `u32` at `addr`.",
        |w, v| w.fetch_and(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_and_u64,
        u64,
        word_u64,
        "AND `v` into the little-endian `u64` at `addr`.",
        |w, v| w.fetch_and(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_or_u32,
        u32,
        word_u32,
        "OR `v` into the little-endian `u32` at `addr`.",
        |w, v| w.fetch_or(v, std::sync::atomic::Ordering::SeqCst)
    );
    guest_atomic!(
        fetch_or_u64,
        u64,
        word_u64,
        "OR `v` into the little-endian `u64` at `addr`.",
        |w, v| w.fetch_or(v, std::sync::atomic::Ordering::SeqCst)
    );

    /// Compare-and-exchange the little-endian `u32` at `addr`: store `new` if it holds
    /// `expected`. Returns the value it held (equal to `expected` when the store
    /// happened), as x86's `cmpxchg` leaves in `eax`.
    pub fn cmpxchg_u32(&self, addr: u64, expected: u32, new: u32) -> Result<u32, AccessFault> {
        self.atomic(addr, 4, |frame, off| {
            let w = frame.word_u32(off);
            // SeqCst both ways: a locked instruction, whether or not it stores.
            let r = w.compare_exchange(
                expected.to_le(),
                new.to_le(),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            );
            u32::from_le(r.unwrap_or_else(|cur| cur))
        })
    }

    /// As [`cmpxchg_u32`](Self::cmpxchg_u32) for a `u64` (`cmpxchg` with `rax`).
    pub fn cmpxchg_u64(&self, addr: u64, expected: u64, new: u64) -> Result<u64, AccessFault> {
        self.atomic(addr, 8, |frame, off| {
            let w = frame.word_u64(off);
            // SeqCst both ways: as in `cmpxchg_u32`.
            let r = w.compare_exchange(
                expected.to_le(),
                new.to_le(),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            );
            u64::from_le(r.unwrap_or_else(|cur| cur))
        })
    }

    /// Hold the page of the aligned `size`-byte word at `addr` for writing and run `op`
    /// on the frame and the word's offset in it.
    fn atomic<T>(
        &self,
        addr: u64,
        size: usize,
        op: impl FnOnce(&FramePin<'_>, usize) -> T,
    ) -> Result<T, AccessFault> {
        if !addr.is_multiple_of(size as u64) {
            return Err(fault_at(Fault::Unaligned { addr }, addr, 0));
        }
        let off = (addr % crate::addr::PAGE_SIZE) as usize;
        self.with_page(addr, Access::Write, |pin| op(pin, off))
            .map_err(|f| fault_at(f, addr, 0))
    }

    /// Fetch instruction bytes at `addr` into `buf`: a read that needs execute
    /// permission (an NX page faults with `SEGV_ACCERR`).
    pub fn fetch(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.copy_out(addr, buf, Access::Exec)
    }

    /// Fault in every page of `[addr, addr + len)` for `access` without transferring
    /// anything (`probe_access`): `Ok` when an access of that kind would succeed now.
    pub fn probe(&self, addr: u64, len: u64, access: Access) -> Result<(), AccessFault> {
        let len = usize::try_from(len).map_err(|_| {
            let f = Fault::Segv {
                addr,
                code: crate::mm::fault::SegvCode::MapErr,
            };
            fault_at(f, addr, 0)
        })?;
        self.each_page(addr, len, Hold::For(access), |_, _, _, _| {})
    }

    /// Write `buf` at `addr` the way a debugger or loader does (`PTRACE_POKEDATA`,
    /// `FOLL_FORCE`): a private mapping without write permission gets its own copy of
    /// the page, which the guest still sees read-only (or not at all, under PROT_NONE);
    /// a shared mapping without write permission faults with `SEGV_ACCERR`.
    pub fn write_forced(&self, addr: u64, buf: &[u8]) -> Result<(), AccessFault> {
        self.each_page(addr, buf.len(), Hold::ForcedWrite, |frame, off, at, n| {
            frame.write(off, &buf[at..at + n]);
        })
    }
}
