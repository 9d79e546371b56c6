//! The maps line (`show_map_vma` in fs/proc/task_mmu.c).
//!
//! `start-end perms offset major:minor inode`, then, when the VMA has a name, padding
//! to column 73 and the name. Addresses are at least 8 hex digits, the offset exactly 8
//! or more, the device two hex digits each. Anonymous VMAs without a name end with the
//! inode field followed by a space.

use std::fmt::Write;

use crate::vma::VmFlags;

/// What a maps line shows about one VMA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permission string, e.g. `rw-p`.
    pub perms: String,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// File offset in bytes (0 for anonymous memory).
    pub offset: u64,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Inode number (0 for anonymous memory).
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`, `/dev/zero (deleted)`), if any.
    pub name: Option<String>,
}

/// Format one maps line (with its newline).
pub fn maps_line(v: &VmaInfo) -> String {
    let mut s = String::with_capacity(100);
    let _ = write!(
        s,
        "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
        v.start, v.end, v.perms, v.offset, v.major, v.minor, v.inode
    );
    if let Some(name) = &v.name {
        // seq_pad: pad to 25 + 6 * sizeof(void *) - 1 = 72 columns, then one space
        // (always, even after a header wider than that).
        while s.len() < 72 {
            s.push(' ');
        }
        s.push(' ');
        s.push_str(name);
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(start: u64, end: u64, perms: &str, name: Option<&str>) -> VmaInfo {
        VmaInfo {
            start,
            end,
            perms: perms.into(),
            flags: VmFlags::empty(),
            offset: 0,
            major: 0,
            minor: 0,
            inode: 0,
            name: name.map(String::from),
        }
    }

    #[test]
    fn anonymous_line_ends_with_space() {
        assert_eq!(
            maps_line(&info(0x7f66be67c000, 0x7f66be77c000, "rw-p", None)),
            "7f66be67c000-7f66be77c000 rw-p 00000000 00:00 0 \n"
        );
    }

    #[test]
    fn heap_line_is_padded_to_column_73() {
        // Literal line from a Linux /proc/PID/maps (traces/python/maps.3363).
        assert_eq!(
            maps_line(&info(
                0x5608b4a8e000,
                0x5608b4c4d000,
                "rw-p",
                Some("[heap]")
            )),
            "5608b4a8e000-5608b4c4d000 rw-p 00000000 00:00 0                          [heap]\n"
        );
    }

    #[test]
    fn file_line_with_offset_device_inode() {
        let mut v = info(
            0x560880ac1000,
            0x560880ac2000,
            "r-xp",
            Some("/opt/python/bin/python3.11"),
        );
        v.offset = 0x1000;
        v.major = 0xfe;
        v.inode = 18504;
        assert_eq!(
            maps_line(&v),
            "560880ac1000-560880ac2000 r-xp 00001000 fe:00 18504                      /opt/python/bin/python3.11\n"
        );
    }

    #[test]
    fn short_addresses_use_eight_digits() {
        assert_eq!(
            maps_line(&info(0x10000, 0x11000, "---p", None)),
            "00010000-00011000 ---p 00000000 00:00 0 \n"
        );
    }
}
