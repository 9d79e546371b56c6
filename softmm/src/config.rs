//! Policy switches. Every mechanism with a design choice is a field here, so variants can
//! be run side by side (`softmm bench`, `softmm stress --config FILE`).

use serde::{Deserialize, Serialize};

use crate::{
    addr::{MAX_MAP_COUNT, MMAP_BASE, MMAP_MIN_ADDR, PAGE_SIZE, TASK_SIZE},
    error::Errno,
};

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

/// `vm.overcommit_memory`: how requests to commit memory are checked
/// (`__vm_enough_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Overcommit {
    /// 0, the heuristic: refuse one request larger than RAM + swap.
    #[default]
    Guess,
    /// 1: never refuse.
    Always,
    /// 2: refuse when the committed total would reach the commit limit
    /// (`overcommit_kbytes`, else `overcommit_ratio`% of RAM, plus swap); MAP_NORESERVE
    /// is ignored.
    Never,
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
    /// `fault_around_bytes` (debugfs): a read fault on a file or shmem mapping also maps
    /// the pages already cached in its aligned block of this size, clamped to the VMA and
    /// to the page table (`do_fault_around`). As Linux, the value is rounded down to a
    /// power of two, and 0 or 4096 turn fault-around off; at most 2 MiB.
    pub fault_around_bytes: u64,
    /// `vm.overcommit_memory`.
    pub overcommit_memory: Overcommit,
    /// `vm.overcommit_ratio` (percent of RAM in the commit limit of `Never`).
    pub overcommit_ratio: u64,
    /// `vm.overcommit_kbytes`: when not 0, the commit limit of `Never` instead of the
    /// ratio.
    pub overcommit_kbytes: u64,
    /// `vm.user_reserve_kbytes`: what `Never` keeps back from a process, at most 1/32 of
    /// its mapped size.
    pub user_reserve_kbytes: u64,
    /// The RAM the commit checks count with (`totalram_pages`): the host's `MemTotal` by
    /// default, not the frames softmm has (which are committed lazily).
    pub commit_ram_bytes: u64,
    /// The swap the commit checks count with (`total_swap_pages`): the host's
    /// `SwapTotal` by default.
    pub commit_swap_bytes: u64,
}

/// The largest `fault_around_bytes`: one page table's span (`PTRS_PER_PTE` pages).
pub const FAULT_AROUND_MAX: u64 = 512 * PAGE_SIZE;

impl Default for Config {
    fn default() -> Self {
        Self {
            phys_mem_bytes: 4 << 30,
            fault_locking: FaultLocking::PerVma,
            max_map_count: MAX_MAP_COUNT,
            mmap_base: MMAP_BASE,
            mmap_min_addr: MMAP_MIN_ADDR,
            brk_start: 0x5555_5555_9000,
            fault_around_bytes: 64 << 10,
            overcommit_memory: Overcommit::Guess,
            overcommit_ratio: 50,
            overcommit_kbytes: 0,
            user_reserve_kbytes: 128 << 10,
            commit_ram_bytes: host_meminfo().0,
            commit_swap_bytes: host_meminfo().1,
        }
    }
}

/// The host's `MemTotal` and `SwapTotal` in bytes, read once from `/proc/meminfo`
/// (4 GiB and no swap where it cannot be read).
fn host_meminfo() -> (u64, u64) {
    static HOST: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *HOST.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
                .map(|kb| kb << 10)
        };
        (
            field("MemTotal").unwrap_or(4 << 30),
            field("SwapTotal").unwrap_or(0),
        )
    })
}

/// A [`Config`] value softmm cannot run with: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {field} = {value:#x}: {reason}")]
pub struct ConfigError {
    /// The field's name.
    pub field: &'static str,
    /// Its value.
    pub value: u64,
    /// What it must be.
    pub reason: &'static str,
}

impl From<ConfigError> for Errno {
    fn from(_: ConfigError) -> Errno {
        Errno::EINVAL
    }
}

impl Config {
    /// Check the address-space layout fields: `mmap_min_addr`, `mmap_base` and
    /// `brk_start` must be page aligned and inside user space (`[0, TASK_SIZE]`), with
    /// `mmap_min_addr` below both others; `fault_around_bytes` at most 2 MiB (Linux
    /// refuses more with `EINVAL`). `AddressSpace::new` and `Machine::new` call it
    /// and fail with `EINVAL`.
    ///
    /// ```
    /// use softmm::{AddressSpace, Config, Errno};
    ///
    /// let bad = Config { mmap_base: 0x7fff_ffff_ffff, ..Config::default() };
    /// let err = bad.validate().unwrap_err();
    /// assert_eq!(err.field, "mmap_base");
    /// assert_eq!(AddressSpace::new(bad).unwrap_err(), Errno::EINVAL);
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field, value: u64, ok: bool, reason| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError {
                    field,
                    value,
                    reason,
                })
            }
        };
        let aligned = |v: u64| v.is_multiple_of(PAGE_SIZE);
        let (min, base, brk) = (self.mmap_min_addr, self.mmap_base, self.brk_start);
        check("mmap_min_addr", min, aligned(min), "page aligned")?;
        check("mmap_base", base, aligned(base), "page aligned")?;
        check(
            "mmap_base",
            base,
            base <= TASK_SIZE,
            "at most TASK_SIZE (0x7ffffffff000)",
        )?;
        check("mmap_base", base, base > min, "above mmap_min_addr")?;
        check("brk_start", brk, aligned(brk), "page aligned")?;
        check(
            "brk_start",
            brk,
            brk < TASK_SIZE,
            "below TASK_SIZE (0x7ffffffff000)",
        )?;
        check("brk_start", brk, brk >= min, "at or above mmap_min_addr")?;
        check(
            "fault_around_bytes",
            self.fault_around_bytes,
            self.fault_around_bytes <= FAULT_AROUND_MAX,
            "at most 2 MiB (0x200000)",
        )?;
        Ok(())
    }

    /// Pages a read fault maps around itself (`fault_around_pages`): the knob at least
    /// one page, rounded down to a power of two; 1 means no fault-around.
    pub fn fault_around_pages(&self) -> u64 {
        let bytes = self.fault_around_bytes.clamp(PAGE_SIZE, FAULT_AROUND_MAX);
        (1u64 << bytes.ilog2()) / PAGE_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(c: Config) -> &'static str {
        c.validate().expect_err("rejected").field
    }

    #[test]
    fn the_default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn bad_layouts_are_rejected_by_field() {
        let d = Config::default;
        assert_eq!(
            field_of(Config {
                mmap_base: 0x7fff_ffff_ffff,
                ..d()
            }),
            "mmap_base"
        );
        assert_eq!(
            field_of(Config {
                mmap_base: u64::MAX,
                ..d()
            }),
            "mmap_base"
        );
        assert_eq!(
            field_of(Config {
                mmap_base: TASK_SIZE + PAGE_SIZE,
                ..d()
            }),
            "mmap_base"
        );
        assert_eq!(
            field_of(Config {
                mmap_min_addr: 0x10001,
                ..d()
            }),
            "mmap_min_addr"
        );
        assert_eq!(
            field_of(Config {
                brk_start: 0x1234,
                ..d()
            }),
            "brk_start"
        );
        assert_eq!(
            field_of(Config {
                mmap_base: 0x1_0000,
                ..d()
            }),
            "mmap_base"
        );
    }

    #[test]
    fn fault_around_is_rounded_as_linux_and_bounded() {
        let pages = |b| {
            Config {
                fault_around_bytes: b,
                ..Config::default()
            }
            .fault_around_pages()
        };
        assert_eq!(Config::default().fault_around_pages(), 16);
        assert_eq!((pages(0), pages(4096), pages(8191)), (1, 1, 1));
        assert_eq!((pages(100_000), pages(FAULT_AROUND_MAX)), (16, 512));
        assert_eq!(
            field_of(Config {
                fault_around_bytes: FAULT_AROUND_MAX + 1,
                ..Config::default()
            }),
            "fault_around_bytes"
        );
    }

    #[test]
    fn the_top_of_user_space_is_a_valid_base() {
        let c = Config {
            mmap_base: TASK_SIZE,
            ..Config::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
