//! Page-by-page comparison of two `/proc/PID/maps` texts over the memory a replay knows.
//!
//! For every page of the compared ranges, both sides say either "unmapped" or (permissions,
//! path, file offset of that page). Paths are compared without a trailing ` (deleted)`
//! (a file may be unlinked after it was mapped); the offset of a page of an anonymous
//! private mapping (inode 0) is 0, of anything else the line's offset plus the page's
//! distance from the line's start. Device and inode numbers are not compared: the replay
//! cannot know them. The walk goes segment by segment (between any two boundaries of
//! either side nothing changes), so a 1 TiB reservation costs what a page does.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ranges::RangeSet;

/// One line of a maps file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `rw-p`.
    pub perms: String,
    /// File offset of `start`.
    pub offset: u64,
    /// Inode number (0 for anonymous memory).
    pub inode: u64,
    /// Path or pseudo-name, empty if none.
    pub path: String,
}

/// Parse a maps text; `Err` names the first malformed line.
pub fn parse_maps(text: &str) -> Result<Vec<MapsLine>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("maps line {}: malformed: {line:?}", i + 1);
        let mut it = line.splitn(6, ' ');
        let range = it.next().ok_or_else(bad)?;
        let perms = it.next().ok_or_else(bad)?;
        let offset = it.next().ok_or_else(bad)?;
        let _dev = it.next().ok_or_else(bad)?;
        let inode = it.next().ok_or_else(bad)?;
        let path = it.next().unwrap_or("").trim_start().to_string();
        let (s, e) = range.split_once('-').ok_or_else(bad)?;
        let hex = |t: &str| u64::from_str_radix(t, 16).map_err(|_| bad());
        let l = MapsLine {
            start: hex(s)?,
            end: hex(e)?,
            perms: perms.to_string(),
            offset: hex(offset)?,
            inode: inode.parse().map_err(|_| bad())?,
            path,
        };
        if l.start >= l.end || perms.len() != 4 {
            return Err(bad());
        }
        out.push(l);
    }
    Ok(out)
}

/// A run of pages where the two sides differ.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// softmm's page there (`perms path @offset`, or `unmapped`).
    pub ours: String,
    /// Linux's.
    pub linux: String,
}

/// The result of a comparison.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PageCompare {
    /// Pages compared.
    pub pages: u64,
    /// Pages on which both agree.
    pub matched: u64,
    /// The differing runs (the first 20).
    pub mismatches: Vec<Mismatch>,
    /// softmm's VMAs (maps lines).
    pub vmas: u64,
    /// How many of them Linux shows as one line with the same range, permissions, offset
    /// and path (VMA boundaries agree: splits and merges happened as in Linux).
    pub vmas_identical: u64,
    /// Linux's VMAs (maps lines).
    pub linux_vmas: u64,
    /// Linux's VMAs left out of the comparison: none of their pages is in the replay's
    /// view (the executable, ld.so, the stack, the vdso: what the kernel mapped without a
    /// traced call), by kind ([`vma_kind`]) and count.
    pub left_out: BTreeMap<String, u64>,
}

/// The kind of a maps line, for the list of VMAs left out: its pseudo-name (`[stack]`), the
/// file name of its path (`ld-linux-x86-64.so.2`), or `anonymous`.
pub fn vma_kind(line: &MapsLine) -> String {
    if line.path.is_empty() {
        "anonymous".to_string()
    } else if line.path.starts_with('[') {
        line.path.clone()
    } else {
        let path = line.path.strip_suffix(" (deleted)").unwrap_or(&line.path);
        path.rsplit('/').next().unwrap_or(path).to_string()
    }
}

impl PageCompare {
    /// Linux's VMAs left out of the comparison, in all.
    pub fn left_out_count(&self) -> u64 {
        self.left_out.values().sum()
    }

    /// The left-out kinds as a list: `[stack], [vdso], python3.11 ×2`.
    pub fn left_out_text(&self) -> String {
        let kinds: Vec<String> = self
            .left_out
            .iter()
            .map(|(k, &n)| {
                if n == 1 {
                    k.clone()
                } else {
                    format!("{k} ×{n}")
                }
            })
            .collect();
        kinds.join(", ")
    }

    /// Matched pages in percent (100 when nothing was compared).
    pub fn percent(&self) -> f64 {
        if self.pages == 0 {
            100.0
        } else {
            self.matched as f64 * 100.0 / self.pages as f64
        }
    }
}

/// What one side shows at `addr`.
fn attr_at(lines: &[MapsLine], addr: u64) -> Option<(&str, &str, u64)> {
    let i = lines.partition_point(|l| l.end <= addr);
    let l = lines.get(i).filter(|l| l.start <= addr)?;
    let off = if l.inode == 0 {
        0
    } else {
        l.offset + (addr - l.start)
    };
    let path = l.path.strip_suffix(" (deleted)").unwrap_or(&l.path);
    Some((&l.perms, path, off))
}

fn describe(a: Option<(&str, &str, u64)>) -> String {
    match a {
        None => "unmapped".to_string(),
        Some((p, path, off)) => format!("{p} {path} @{off:#x}"),
    }
}

/// Compare `ours` with `linux` over `scope` and every page `ours` maps.
pub fn compare(ours: &[MapsLine], linux: &[MapsLine], scope: &RangeSet) -> PageCompare {
    let mut ranges = scope.clone();
    for l in ours {
        ranges.insert(l.start, l.end);
    }
    let mut result = PageCompare {
        linux_vmas: linux.len() as u64,
        ..PageCompare::default()
    };
    for l in linux.iter().filter(|l| !ranges.intersects(l.start, l.end)) {
        *result.left_out.entry(vma_kind(l)).or_default() += 1;
    }
    for l in ours {
        result.vmas += 1;
        let i = linux.partition_point(|x| x.start < l.start);
        if linux.get(i).is_some_and(|x| {
            x.start == l.start
                && x.end == l.end
                && x.perms == l.perms
                && attr_at(linux, x.start) == attr_at(ours, l.start)
        }) {
            result.vmas_identical += 1;
        }
    }
    for (s, e) in ranges.iter() {
        let mut cuts: Vec<u64> = ours
            .iter()
            .chain(linux)
            .flat_map(|l| [l.start, l.end])
            .filter(|&b| b > s && b < e)
            .collect();
        cuts.push(s);
        cuts.push(e);
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let pages = (b - a) / 4096;
            let (x, y) = (attr_at(ours, a), attr_at(linux, a));
            result.pages += pages;
            if x == y {
                result.matched += pages;
                continue;
            }
            if let Some(last) = result.mismatches.last_mut()
                && last.end == a
                && last.ours == describe(x)
                && last.linux == describe(y)
            {
                last.end = b;
            } else if result.mismatches.len() < 20 {
                result.mismatches.push(Mismatch {
                    start: a,
                    end: b,
                    ours: describe(x),
                    linux: describe(y),
                });
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "\
560880ac0000-560880ac1000 r--p 00000000 fe:00 18504                      /opt/python/bin/python3.11
5608b4a8e000-5608b4c4d000 rw-p 00000000 00:00 0                          [heap]
7f66c2e00000-7f66c2ef5000 r--p 00000000 fe:00 18714                      /opt/python/lib/libpython3.11.so.1.0
7f66c2ef5000-7f66c3131000 r-xp 000f5000 fe:00 18714                      /opt/python/lib/libpython3.11.so.1.0
7f66c3836000-7f66c383d000 r--s 00000000 fe:00 325745                     /usr/lib/gconv.cache
7f66c383d000-7f66c383f000 rw-p 00000000 00:00 0 
";

    #[test]
    fn parses_linux_maps() {
        let l = parse_maps(LINUX).unwrap();
        assert_eq!(l.len(), 6);
        assert_eq!(l[1].path, "[heap]");
        assert_eq!(l[3].offset, 0xf5000);
        assert_eq!(l[5].path, "");
        assert!(parse_maps("zz-1 rw-p 0 0 0").is_err());
    }

    #[test]
    fn merged_and_split_vmas_compare_equal_page_by_page() {
        let linux = parse_maps(LINUX).unwrap();
        // softmm shows the two libpython parts and the heap, split differently, and not
        // the executable (outside the view).
        let ours = parse_maps(
            "5608b4a8e000-5608b4b00000 rw-p 00000000 00:00 0 [heap]\n\
             5608b4b00000-5608b4c4d000 rw-p 00000000 00:00 0 [heap]\n\
             7f66c2e00000-7f66c2e10000 r--p 00000000 fe:00 1 /opt/python/lib/libpython3.11.so.1.0\n\
             7f66c2e10000-7f66c2ef5000 r--p 00010000 fe:00 1 /opt/python/lib/libpython3.11.so.1.0\n\
             7f66c2ef5000-7f66c3131000 r-xp 000f5000 fe:00 1 /opt/python/lib/libpython3.11.so.1.0\n",
        )
        .unwrap();
        let mut scope = RangeSet::new();
        scope.insert(0x7f66c2e00000, 0x7f66c3131000);
        let c = compare(&ours, &linux, &scope);
        assert_eq!(c.pages, (0x5608b4c4d000 - 0x5608b4a8e000 + 0x331000) / 4096);
        assert_eq!(c.matched, c.pages, "{:?}", c.mismatches);
        // Same pages, but only the r-xp line is the same VMA.
        assert_eq!((c.vmas, c.vmas_identical), (5, 1));
        // The executable and the gconv cache and anonymous page are outside the view.
        assert_eq!(c.linux_vmas, 6);
        assert_eq!(c.left_out_count(), 3);
        assert_eq!(c.left_out_text(), "anonymous, gconv.cache, python3.11");
    }

    #[test]
    fn wrong_offset_permissions_and_missing_pages_are_counted() {
        let linux = parse_maps(LINUX).unwrap();
        let ours = parse_maps(
            "7f66c2e00000-7f66c2ef5000 r--p 00001000 fe:00 1 /opt/python/lib/libpython3.11.so.1.0\n\
             7f66c383d000-7f66c383e000 r--p 00000000 00:00 0 \n",
        )
        .unwrap();
        let mut scope = RangeSet::new();
        scope.insert(0x7f66c3836000, 0x7f66c383f000);
        let c = compare(&ours, &linux, &scope);
        assert_eq!(c.pages, 0xf5 + 9);
        assert_eq!(c.matched, 0);
        assert_eq!(c.mismatches.len(), 4);
        assert_eq!(c.mismatches[1].ours, "unmapped");
        assert_eq!(c.mismatches[1].linux, "r--s /usr/lib/gconv.cache @0x0");
    }
}
