//! mmap and address placement (`do_mmap`, `get_unmapped_area`).
//!
//! Check order follows Linux (protocol reference §10.1): offset alignment, mapping
//! type, zero length, hint rounding, length overflow, map count, address selection,
//! MAP_FIXED_NOREPLACE, then the flags of the new VMA. Placement is top-down below
//! `mmap_base` (ASLR off), a free hint is honoured, MAP_32BIT searches bottom-up in
//! `[1 GiB, 2 GiB)`, and the stack guard gap (256 pages) is kept below a VM_GROWSDOWN
//! VMA.

use std::sync::Arc;

use super::{AddressSpace, commit::accounted_in};
use crate::addr::PAGE_SHIFT;
use crate::{
    abi::*,
    addr::{HUGE_SIZE, PAGE_SIZE, PageAddr, TASK_SIZE, is_page_aligned, page_up},
    config::Overcommit,
    error::Errno,
    error::SysResult,
    file::OpenFile,
    pagecache::{ObjectKind, PageCache},
    pgtable::Gather,
    vma::{Backing, TreeEdit, Vma, flags::*},
};

/// Linux `stack_guard_gap`: 256 pages.
pub(crate) const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// The file offset whose 2 MiB alignment the placement of a new mapping keeps
/// (`__get_unmapped_area`): disk files always (their `get_unmapped_area` is
/// `thp_get_unmapped_area`); private anonymous memory without a hint whose length is a
/// multiple of 2 MiB; never shmem (huge pages off) or tmpfs-like files.
pub(crate) fn thp_offset(
    file: Option<&OpenFile>,
    shared: bool,
    addr: u64,
    len: u64,
    pgoff: u64,
) -> Option<u64> {
    match file {
        Some(f) if f.object.kind() == &ObjectKind::DiskFile => Some(pgoff << PAGE_SHIFT),
        Some(_) => None,
        None if !shared && addr == 0 && len.is_multiple_of(HUGE_SIZE) => Some(0),
        None => None,
    }
}

/// The window MAP_32BIT mappings are placed in, bottom-up (x86-64 `find_start_end`
/// without ASLR).
const MAP_32BIT_START: u64 = 0x4000_0000;
const MAP_32BIT_END: u64 = 0x8000_0000;

/// Start of a VMA including the guard gap below a grows-down VMA (`vm_start_gap`).
pub(crate) fn start_gap(v: &Vma) -> u64 {
    if v.flags.intersects(VM_GROWSDOWN) {
        v.start.get().saturating_sub(STACK_GUARD_GAP)
    } else {
        v.start.get()
    }
}

/// The flags of an anonymous mapping of type `mtype` (`do_mmap`'s `else` branch): the
/// type is checked only now, and only the two legacy types and MAP_DROPPABLE are
/// accepted (MAP_SHARED_VALIDATE is for files).
fn anon_vm_flags(mtype: MapType, flags: MapFlags, mut vm_flags: VmFlags) -> SysResult<VmFlags> {
    match mtype {
        MapType::Shared => {
            if vm_flags.intersects(VM_GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
            vm_flags |= VM_SHARED | VM_MAYSHARE;
        }
        MapType::Droppable => {
            // Neither locked nor stack memory can be droppable (nor hugetlb, refused
            // before); it reserves nothing and survives neither fork nor a core dump.
            if flags.contains(MapFlags::LOCKED) || vm_flags.intersects(VM_GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
            vm_flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP;
        }
        MapType::Private => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(vm_flags)
}

impl AddressSpace {
    /// `mmap(2)` without a descriptor table: anonymous mappings (`fd` is ignored with
    /// `MAP_ANONYMOUS`); any file descriptor is `EBADF`. [`crate::process::Machine`]
    /// resolves descriptors and calls [`AddressSpace::mmap_file`].
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        off: u64,
    ) -> SysResult<u64> {
        let _ = fd;
        self.mmap_file(addr, len, prot, flags, Err(Errno::EBADF), off)
    }

    /// `mmap(2)` with the descriptor already resolved: `file` is the open file `fd`
    /// names, or the error looking it up gave (reported only for a file mapping, after
    /// the offset check, as `ksys_mmap_pgoff` does).
    pub fn mmap_file(
        &self,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        file: SysResult<Arc<OpenFile>>,
        off: u64,
    ) -> SysResult<u64> {
        if off & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let (prot, mtype, flags) = (
            Prot::from_bits_retain(prot),
            MapType::of(flags),
            MapFlags::of(flags),
        );
        let file = if !flags.contains(MapFlags::ANONYMOUS) {
            Some(file?)
        } else {
            None
        };
        if flags.contains(MapFlags::HUGETLB) {
            // A file is not on hugetlbfs: EINVAL; anonymous memory has no hugetlb pool
            // (nr_hugepages = 0): ENOMEM, unless droppable: the anonymous hugetlbfs file
            // Linux creates first makes it a file mapping, of a type files refuse.
            let droppable = mtype == MapType::Droppable;
            return Err(if file.is_some() || droppable {
                Errno::EINVAL
            } else {
                Errno::ENOMEM
            });
        }
        let mut state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let r = self.do_mmap(
            &mut state,
            addr,
            len,
            prot,
            mtype,
            flags,
            off >> PAGE_SHIFT,
            file,
            &mut gather,
        );
        drop(state);
        self.tlb_finish(gather);
        let (addr, populate) = r?;
        if let Some((start, end)) = populate {
            let layout = self.lock.read();
            self.populate_range(&layout, start, end);
        }
        Ok(addr)
    }

    #[expect(clippy::too_many_arguments, reason = "the mmap argument list")]
    fn do_mmap(
        &self,
        state: &mut super::vma_lock::MmWriteGuard<'_>,
        addr: u64,
        len: u64,
        prot: Prot,
        mtype: MapType,
        mut flags: MapFlags,
        pgoff: u64,
        file: Option<Arc<OpenFile>>,
        gather: &mut Gather,
    ) -> SysResult<(u64, Option<(PageAddr, PageAddr)>)> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags.contains(MapFlags::FIXED_NOREPLACE) {
            flags |= MapFlags::FIXED;
        }
        let mut addr = addr;
        if !flags.contains(MapFlags::FIXED) {
            addr &= !(PAGE_SIZE - 1);
            if addr != 0 && addr < self.config.mmap_min_addr {
                addr = self.config.mmap_min_addr;
            }
        }
        let len = match page_up(len) {
            Some(l) if l != 0 => l,
            _ => return Err(Errno::ENOMEM),
        };
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        let mut edit = self.tree.edit();
        if edit.len() > self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        let thp = thp_offset(file.as_deref(), mtype.is_shared(), addr, len, pgoff);
        let addr = self.get_unmapped_area(&edit, addr, len, flags, thp)?;
        let end = addr + len;
        if flags.contains(MapFlags::FIXED_NOREPLACE)
            && edit
                .intersecting_iter(addr.get(), end.get())
                .next()
                .is_some()
        {
            return Err(Errno::EEXIST);
        }
        let mut vm_flags =
            prot_to_vm(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | state.def_flags;
        if flags.contains(MapFlags::GROWSDOWN) {
            vm_flags |= VM_GROWSDOWN;
        }
        if flags.contains(MapFlags::LOCKED) {
            vm_flags |= VM_LOCKED;
        }
        if let Some(f) = &file {
            vm_flags = Self::file_vm_flags(f, prot, mtype, flags, pgoff, len, vm_flags)?;
        } else {
            vm_flags = anon_vm_flags(mtype, flags, vm_flags)?;
        }
        // Droppable memory is never locked, even under mlockall(MCL_FUTURE), but is
        // faulted in as locked memory would be.
        let populate_locked = vm_flags.intersects(VM_LOCKED);
        if vm_flags.intersects(VM_DROPPABLE) {
            vm_flags -= VM_LOCKED_MASK;
        }
        // MAP_NORESERVE is honoured only where overcommit is allowed.
        if flags.contains(MapFlags::NORESERVE) && self.config.overcommit_memory != Overcommit::Never
        {
            vm_flags |= VM_NORESERVE;
        }
        if flags.contains(MapFlags::STACK) {
            vm_flags |= VM_NOHUGEPAGE;
        }
        // Private writable memory is accounted (`accountable_mapping`).
        if vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE) == VM_WRITE {
            vm_flags |= VM_ACCOUNT;
        }
        let zero = file
            .as_ref()
            .is_some_and(|f| f.object.kind() == &ObjectKind::ZeroDevice);
        // Shared anonymous memory (or /dev/zero) is a new shmem object.
        let new_shmem = vm_flags.intersects(VM_SHARED) && (file.is_none() || zero);
        let shmem_charge = self.mmap_charge(&edit, addr, len, vm_flags, new_shmem)?;
        // MAP_FIXED over existing mappings: unmap first, atomically for user space.
        self.unmap_locked(&*state, &mut edit, addr, end, gather)?;
        if edit.len() > self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        if shmem_charge != 0
            && let Err(e) = self.vm_enough_memory(shmem_charge, 0)
        {
            // The old mappings are gone already (Linux unmaps them before the shmem
            // setup and does not put them back): a hole is left.
            edit.commit();
            return Err(e);
        }
        let backing = match file {
            // `mmap_zero`: a private mapping of /dev/zero is anonymous memory that keeps
            // the file; a shared one is new shmem, as shared anonymous memory is.
            Some(f) if zero && !vm_flags.intersects(VM_SHARED) => Backing::AnonFile(f),
            Some(f) if !zero => Backing::File(f),
            _ if vm_flags.intersects(VM_SHARED) => {
                // `shmem_zero_setup`: shared anonymous memory is a new shmem file.
                let obj = PageCache::new(&self.pm, len, "/dev/zero (deleted)");
                if shmem_charge != 0 {
                    obj.charge(shmem_charge);
                }
                Backing::File(OpenFile::new(obj, true, true))
            }
            _ => Backing::Anon,
        };
        let pgoff = match &backing {
            Backing::Anon => addr.vpn(),
            Backing::AnonFile(_) => pgoff,
            Backing::File(f) if f.object.kind() == &ObjectKind::Shmem => 0,
            Backing::File(_) => pgoff,
        };
        if let Some(obj) = backing.object() {
            obj.add_mapper(self.mapper());
        }
        // A new shmem file never merges (no other VMA holds it).
        let vma = self.insert_merged(&mut edit, addr, end, vm_flags, pgoff, backing);
        edit.commit();
        let populate = (flags.contains(MapFlags::POPULATE) && !flags.contains(MapFlags::NONBLOCK))
            || vma.flags.intersects(VM_LOCKED)
            || populate_locked;
        Ok((addr.get(), populate.then_some((addr, end))))
    }

    /// Check the commit charge of an accounted mapping before anything is unmapped, so
    /// a refused MAP_FIXED leaves the old mapping: its pages less those of accounted
    /// mappings it replaces (`mmap_region`). Returns what new shmem must be charged
    /// (all its pages unless MAP_NORESERVE), which is checked only after the unmap
    /// (`shmem_zero_setup` runs when the old mappings are gone).
    fn mmap_charge(
        &self,
        edit: &TreeEdit<'_>,
        addr: PageAddr,
        len: u64,
        vm_flags: VmFlags,
        new_shmem: bool,
    ) -> SysResult<u64> {
        let pages = len >> PAGE_SHIFT;
        if vm_flags.intersects(VM_ACCOUNT) {
            let charge = pages - accounted_in(edit, addr, addr + len);
            if charge != 0 {
                self.vm_enough_memory(charge, 0)?;
            }
            return Ok(0);
        }
        Ok(if new_shmem && !vm_flags.intersects(VM_NORESERVE) {
            pages
        } else {
            0
        })
    }

    /// The flags a file mapping gets, with Linux's checks of the open mode
    /// (`do_mmap`'s `if (file)` branch, after placement).
    fn file_vm_flags(
        f: &OpenFile,
        prot: Prot,
        mtype: MapType,
        flags: MapFlags,
        pgoff: u64,
        len: u64,
        mut vm_flags: VmFlags,
    ) -> SysResult<VmFlags> {
        // `file_mmap_ok`: the last byte's offset must fit the largest file size.
        let max_pages = crate::file::MAX_FILE_SIZE >> PAGE_SHIFT;
        if (len >> PAGE_SHIFT) > max_pages || pgoff > max_pages - (len >> PAGE_SHIFT) {
            return Err(Errno::EOVERFLOW);
        }
        let validate = mtype == MapType::SharedValidate;
        if validate && !(flags - MapFlags::VALIDATED).is_empty() {
            return Err(Errno::EOPNOTSUPP);
        }
        if validate && flags.contains(MapFlags::SYNC) {
            // No DAX: `FOP_MMAP_SYNC` is not set, so MAP_SYNC is unknown here.
            return Err(Errno::EOPNOTSUPP);
        }
        match mtype {
            MapType::Shared | MapType::SharedValidate => {
                if prot.contains(Prot::WRITE) && !f.writable {
                    return Err(Errno::EACCES);
                }
                vm_flags |= VM_SHARED | VM_MAYSHARE;
                if !f.writable {
                    vm_flags &= !(VM_MAYWRITE | VM_SHARED);
                }
            }
            MapType::Private => {}
            _ => return Err(Errno::EINVAL),
        }
        if !f.readable {
            return Err(Errno::EACCES);
        }
        if f.kind == crate::file::OpenKind::Directory {
            // No `f_op->mmap`.
            return Err(Errno::ENODEV);
        }
        if vm_flags.intersects(VM_GROWSDOWN) {
            return Err(Errno::EINVAL);
        }
        Ok(vm_flags)
    }

    /// Where a non-fixed mapping of `len` bytes with hint `addr` (of `file` at page
    /// offset `pgoff`, or anonymous) would go now if the top-down area started at
    /// `mmap_base` (a dry run: nothing changes). A replay uses it to measure how often
    /// softmm's placement agrees with the kernel's.
    pub fn probe_placement(
        &self,
        file: Option<&OpenFile>,
        addr: u64,
        len: u64,
        flags: u64,
        pgoff: u64,
        mmap_base: u64,
    ) -> Option<u64> {
        let len = page_up(len).filter(|&l| l != 0)?;
        let _state = self.lock.read();
        let edit = self.tree.edit();
        let mut addr = addr & !(PAGE_SIZE - 1);
        if addr != 0 && addr < self.config.mmap_min_addr {
            addr = self.config.mmap_min_addr;
        }
        let shared = MapType::of(flags).is_shared();
        let thp = thp_offset(file, shared, addr, len, pgoff);
        let flags = MapFlags::of(flags) - MapFlags::FIXED;
        self.unmapped_area_below(&edit, addr, len, flags, mmap_base, thp)
            .ok()
    }

    /// Choose where a mapping of `len` bytes goes (`get_unmapped_area`).
    pub(crate) fn get_unmapped_area(
        &self,
        edit: &TreeEdit<'_>,
        addr: u64,
        len: u64,
        flags: MapFlags,
        thp: Option<u64>,
    ) -> SysResult<PageAddr> {
        let a = self.unmapped_area_below(edit, addr, len, flags, self.config.mmap_base, thp)?;
        // Every path yields a page boundary (hints are rounded down, MAP_FIXED is
        // checked, gaps lie between VMA bounds); EINVAL rather than trusting it.
        PageAddr::new(a).ok_or(Errno::EINVAL)
    }

    /// `get_unmapped_area` below `mmap_base`; `thp` is the file offset to align to 2 MiB
    /// for (`__thp_get_unmapped_area`), when the mapping is eligible.
    fn unmapped_area_below(
        &self,
        edit: &TreeEdit<'_>,
        addr: u64,
        len: u64,
        flags: MapFlags,
        mmap_base: u64,
        thp: Option<u64>,
    ) -> SysResult<u64> {
        if let Some(off) = thp
            && !flags.contains(MapFlags::FIXED)
            && let Some(a) = self.thp_area(edit, addr, len, flags, mmap_base, off)
        {
            return Ok(a);
        }
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        if flags.contains(MapFlags::FIXED) {
            if addr > TASK_SIZE - len {
                return Err(Errno::ENOMEM);
            }
            if !is_page_aligned(addr) {
                return Err(Errno::EINVAL);
            }
            if addr < self.config.mmap_min_addr {
                return Err(Errno::EPERM);
            }
            return Ok(addr);
        }
        // MAP_32BIT searches bottom-up in [1 GiB, 2 GiB) (x86-64 `find_start_end`) and takes
        // a hint only if the mapping ends by 2 GiB (`end - len >= addr`; below 1 GiB too).
        let hint_end = if flags.contains(MapFlags::BELOW_2G) {
            MAP_32BIT_END
        } else {
            TASK_SIZE
        };
        if addr != 0 && addr <= hint_end.saturating_sub(len) && self.range_free(edit, addr, len) {
            return Ok(addr);
        }
        let found = if flags.contains(MapFlags::BELOW_2G) {
            edit.find_gap_bottom_up(len, MAP_32BIT_START, MAP_32BIT_END, start_gap)
        } else {
            edit.find_gap_top_down(
                len,
                PAGE_SIZE.max(self.config.mmap_min_addr),
                mmap_base,
                start_gap,
            )
        };
        found.ok_or(Errno::ENOMEM)
    }

    /// Search for `len` plus 2 MiB and place the mapping so that file offset `off` lands
    /// on a 2 MiB boundary (the top of the padded area when already aligned, top-down);
    /// `None` when the range cannot hold an aligned huge page or the padded search fails
    /// (the caller then searches without padding).
    fn thp_area(
        &self,
        edit: &TreeEdit<'_>,
        addr: u64,
        len: u64,
        flags: MapFlags,
        mmap_base: u64,
        off: u64,
    ) -> Option<u64> {
        let size = HUGE_SIZE;
        let off_end = off.checked_add(len)?;
        let off_align = off.next_multiple_of(size);
        if off_end <= off_align || off_end - off_align < size {
            return None;
        }
        let len_pad = len.checked_add(size)?;
        off.checked_add(len_pad)?;
        let ret = self
            .unmapped_area_below(edit, addr, len_pad, flags, mmap_base, None)
            .ok()?;
        if ret == addr {
            return Some(addr);
        }
        let off_sub = off.wrapping_sub(ret) & (size - 1);
        Some(if off_sub == 0 {
            ret + size
        } else {
            ret + off_sub
        })
    }

    /// Whether `[addr, addr + len)` is free, including guard gaps.
    fn range_free(&self, edit: &TreeEdit<'_>, addr: u64, len: u64) -> bool {
        let end = addr + len;
        let next_ok = edit.next(addr).is_none_or(|n| end <= start_gap(&n));
        let prev_ok = edit.prev(addr).is_none_or(|p| addr >= p.end);
        next_ok && prev_ok && addr >= self.config.mmap_min_addr
    }
}
