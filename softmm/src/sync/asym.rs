//! Asymmetric fences: a [`Light`] side that hot paths run on every use, and a [`heavy`]
//! side that a rare writer runs, which together order memory as a `SeqCst` fence on
//! each side would (the Dekker pattern: each side stores, fences, then loads what the
//! other stored, and at least one of them sees the other's store).
//!
//! On Linux the heavy side is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the kernel
//! interrupts every running thread of the process and runs a full barrier on it, so the
//! light side needs only a compiler fence (the processor cannot reorder across the
//! barrier the kernel inserts). Where that command is unavailable (an old kernel, a
//! seccomp filter), under Miri, ThreadSanitizer (which cannot see a barrier the kernel
//! runs) and the model checkers, both sides are `SeqCst` fences, which is always
//! correct, only slower on the light side.

use std::sync::atomic::{AtomicU8, Ordering, compiler_fence};

/// 0: not tried yet; 1: expedited membarrier registered; 2: unavailable (fences).
static MODE: AtomicU8 = AtomicU8::new(0);

const REGISTERED: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// Register the process for expedited membarrier, once. Call before any thread uses
/// [`Light`] or [`heavy`] for a given piece of shared state (creating the state and
/// handing it to other threads orders this before their use).
pub fn init() {
    if MODE.load(Ordering::Acquire) != 0 {
        return;
    }
    // Acquire/Release: a thread that sees the mode also sees the registration it
    // records (the syscall returned before the store).
    MODE.store(register(), Ordering::Release);
}

#[cfg(not(any(loom, shuttle, miri, softmm_tsan)))]
fn register() -> u8 {
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;
    // SAFETY: membarrier takes two integer arguments and touches no user memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
        )
    };
    if r == 0 { REGISTERED } else { UNAVAILABLE }
}

#[cfg(any(loom, shuttle, miri, softmm_tsan))]
fn register() -> u8 {
    UNAVAILABLE
}

/// The cheap side: a compiler fence when expedited membarrier is registered, else a
/// `SeqCst` fence. The mode is read once, when the value is made (after [`init`]): a hot
/// path keeps it beside its own state rather than load the global on every use.
#[derive(Clone, Copy, Debug)]
pub struct Light {
    fence: bool,
}

impl Light {
    /// The mode [`init`] chose.
    pub fn current() -> Self {
        // Relaxed: the mode is set once, before the shared state this fence protects was
        // handed to this thread (see `init`).
        Self {
            fence: MODE.load(Ordering::Relaxed) != REGISTERED,
        }
    }

    /// The fence.
    #[inline]
    pub fn fence(self) {
        if self.fence {
            crate::sync::fence(Ordering::SeqCst);
        } else {
            compiler_fence(Ordering::SeqCst);
        }
    }
}

/// The expensive side: a full barrier on every running thread of the process, or a
/// `SeqCst` fence when [`Light`] is one.
pub fn heavy() {
    if MODE.load(Ordering::Relaxed) == REGISTERED {
        expedited();
    } else {
        crate::sync::fence(Ordering::SeqCst);
    }
}

#[cfg(not(any(loom, shuttle, miri, softmm_tsan)))]
fn expedited() {
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    // SAFETY: as in `register`.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) };
    // Registered, so the command cannot fail (EINVAL/EPERM come only without it).
    assert_eq!(r, 0, "membarrier failed after registration");
}

#[cfg(any(loom, shuttle, miri, softmm_tsan))]
fn expedited() {
    unreachable!("never registered in these builds");
}
