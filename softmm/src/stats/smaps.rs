//! The smaps block of one VMA (`show_smap` / `__show_smap` in fs/proc/task_mmu.c).
//!
//! Labels are left-aligned in 16 columns and values right-aligned in 8, in kB; PSS is
//! accumulated in fixed point with 12 fractional bits and truncated when printed.

use std::fmt::Write;

use super::maps::{VmaInfo, maps_line};
use crate::vma::flags::MNEMONICS;

/// Fixed-point shift of PSS accumulators (Linux `PSS_SHIFT`).
pub const PSS_SHIFT: u32 = 12;

/// What the smaps walk counts for one VMA (bytes; PSS values in fixed point).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmapsCounters {
    /// Resident bytes.
    pub rss: u64,
    /// Proportional set size << PSS_SHIFT.
    pub pss: u64,
    /// PSS of dirty pages << PSS_SHIFT.
    pub pss_dirty: u64,
    /// Shared clean bytes.
    pub shared_clean: u64,
    /// Shared dirty bytes.
    pub shared_dirty: u64,
    /// Private clean bytes.
    pub private_clean: u64,
    /// Private dirty bytes.
    pub private_dirty: u64,
    /// Referenced bytes.
    pub referenced: u64,
    /// Anonymous bytes.
    pub anonymous: u64,
    /// MADV_FREE'd clean anonymous bytes.
    pub lazyfree: u64,
    /// PMD-mapped anonymous huge pages.
    pub anon_huge: u64,
    /// PSS of pages in a locked VMA << PSS_SHIFT.
    pub locked: u64,
}

impl SmapsCounters {
    /// Account one mapped 4 KiB page: `mapcount` mappings of it, frame refcount
    /// `refcount`, dirty, referenced, anonymous, lazily freeable, in a locked VMA.
    #[expect(clippy::too_many_arguments, reason = "the per-page facts smaps uses")]
    pub fn account(
        &mut self,
        size: u64,
        refcount: u32,
        mapcount: u32,
        dirty: bool,
        young: bool,
        anon: bool,
        lazyfree: bool,
        locked: bool,
    ) {
        self.rss += size;
        if anon {
            self.anonymous += size;
            if lazyfree && !dirty {
                self.lazyfree += size;
            }
        }
        if young {
            self.referenced += size;
        }
        let private = refcount == 1 || mapcount < 2;
        let pss = if private {
            size << PSS_SHIFT
        } else {
            (size << PSS_SHIFT) / mapcount as u64
        };
        self.pss += pss;
        match (private, dirty) {
            (true, true) => self.private_dirty += size,
            (true, false) => self.private_clean += size,
            (false, true) => self.shared_dirty += size,
            (false, false) => self.shared_clean += size,
        }
        if dirty {
            self.pss_dirty += pss;
        }
        if locked {
            self.locked += pss;
        }
    }

    /// The value in kB of an smaps field, `None` if the name is unknown.
    pub fn field_kb(&self, name: &str, size: u64, thp_eligible: bool) -> Option<u64> {
        let kb = |b: u64| b >> 10;
        let pss_kb = |p: u64| p >> (10 + PSS_SHIFT);
        Some(match name {
            "Size" => kb(size),
            "KernelPageSize" | "MMUPageSize" => 4,
            "Rss" => kb(self.rss),
            "Pss" => pss_kb(self.pss),
            "Pss_Dirty" => pss_kb(self.pss_dirty),
            "Shared_Clean" => kb(self.shared_clean),
            "Shared_Dirty" => kb(self.shared_dirty),
            "Private_Clean" => kb(self.private_clean),
            "Private_Dirty" => kb(self.private_dirty),
            "Referenced" => kb(self.referenced),
            "Anonymous" => kb(self.anonymous),
            "LazyFree" => kb(self.lazyfree),
            "AnonHugePages" => kb(self.anon_huge),
            "Locked" => pss_kb(self.locked),
            "THPeligible" => u64::from(thp_eligible),
            "KSM" | "ShmemPmdMapped" | "FilePmdMapped" | "Shared_Hugetlb" | "Private_Hugetlb"
            | "Swap" | "SwapPss" => 0,
            _ => return None,
        })
    }
}

/// Field names in the order smaps prints them (VmFlags aside).
pub const SMAPS_FIELDS: &[&str] = &[
    "Size",
    "KernelPageSize",
    "MMUPageSize",
    "Rss",
    "Pss",
    "Pss_Dirty",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Referenced",
    "Anonymous",
    "KSM",
    "LazyFree",
    "AnonHugePages",
    "ShmemPmdMapped",
    "FilePmdMapped",
    "Shared_Hugetlb",
    "Private_Hugetlb",
    "Swap",
    "SwapPss",
    "Locked",
    "THPeligible",
];

/// Format the smaps entry of one VMA: its maps line, the fields, VmFlags.
pub fn smaps_entry(v: &VmaInfo, c: &SmapsCounters, thp_eligible: bool) -> String {
    let mut s = maps_line(v);
    let size = v.end - v.start;
    for name in SMAPS_FIELDS {
        let val = c.field_kb(name, size, thp_eligible).unwrap_or(0);
        let label = format!("{name}:");
        if *name == "THPeligible" {
            let _ = writeln!(s, "{label:<16}{val:>8}");
        } else {
            let _ = writeln!(s, "{label:<16}{val:>8} kB");
        }
    }
    s.push_str("VmFlags:");
    for (bit, m) in MNEMONICS {
        if v.flags.intersects(*bit) {
            s.push(' ');
            s.push_str(m);
        }
    }
    s.push_str(" \n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vma::flags::*;

    #[test]
    fn matches_linux_text() {
        // A Linux smaps entry for a private anonymous mapping of 3 pages with 1 dirty.
        let expected = "\
7ffff7ffc000-7ffff7fff000 rw-p 00000000 00:00 0 
Size:                 12 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   4 kB
Pss_Dirty:             4 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         4 kB
Referenced:            4 kB
Anonymous:             4 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me ac 
";
        let v = VmaInfo {
            start: 0x7ffff7ffc000,
            end: 0x7ffff7fff000,
            perms: "rw-p".into(),
            flags: VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT,
            offset: 0,
            major: 0,
            minor: 0,
            inode: 0,
            name: None,
        };
        let mut c = SmapsCounters::default();
        c.account(4096, 1, 1, true, true, true, false, false);
        assert_eq!(smaps_entry(&v, &c, false), expected);
    }

    #[test]
    fn pss_splits_shared_pages() {
        let mut c = SmapsCounters::default();
        c.account(4096, 3, 3, false, true, true, false, true);
        assert_eq!(c.field_kb("Pss", 0, false), Some(1));
        assert_eq!(c.field_kb("Shared_Clean", 0, false), Some(4));
        assert_eq!(c.field_kb("Locked", 0, false), Some(1));
        assert_eq!(c.field_kb("Nope", 0, false), None);
    }
}
