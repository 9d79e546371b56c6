//! Policy switches. Every mechanism with a design choice is a field here, so variants can
//! be run side by side (`softmm bench`, `softmm stress --config FILE`).

use serde::{Deserialize, Serialize};

use crate::addr::{MAX_MAP_COUNT, MMAP_BASE, MMAP_MIN_ADDR};

/// How page faults synchronise with address-space changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FaultLocking {
    /// Every fault takes `mmap_lock` for read (Linux before 6.4).
    Global,
    /// Faults run under a per-VMA read lock found under RCU, falling back to `mmap_lock`
    /// read when the VMA is write-locked (Linux 6.4+, `lock_vma_under_rcu`).
    #[default]
    PerVma,
}

/// Configuration of a softmm machine. `Config::default()` is the fastest safe choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Bytes of physical memory (frames), rounded down to 2 MiB. Reserved up front,
    /// committed lazily.
    pub phys_mem_bytes: u64,
    /// Fault-path locking.
    pub fault_locking: FaultLocking,
    /// `vm.max_map_count`.
    pub max_map_count: usize,
    /// Top of the top-down mmap area.
    pub mmap_base: u64,
    /// `vm.mmap_min_addr`.
    pub mmap_min_addr: u64,
    /// Initial program break (start of the `[heap]`).
    pub brk_start: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            phys_mem_bytes: 4 << 30,
            fault_locking: FaultLocking::PerVma,
            max_map_count: MAX_MAP_COUNT,
            mmap_base: MMAP_BASE,
            mmap_min_addr: MMAP_MIN_ADDR,
            brk_start: 0x5555_5555_9000,
        }
    }
}
