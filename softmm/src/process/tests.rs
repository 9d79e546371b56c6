//! Processes, fork/COW, files: behaviour read back through the MMU and the frame counts.

use super::*;
use crate::{frame::PageFlags, mm::fault::Signal};

fn machine() -> (Machine, Pid) {
    let config = Config {
        phys_mem_bytes: 64 << 20,
        ..Config::default()
    };
    let m = Machine::new(config).unwrap();
    let pid = m.spawn(None).unwrap();
    (m, pid)
}

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

fn peek(m: &Machine, pid: Pid, addr: u64, n: usize) -> Result<Vec<u8>, Signal> {
    let mut b = vec![0; n];
    m.cpu(pid)
        .unwrap()
        .read(addr, &mut b)
        .map(|_| b)
        .map_err(|e| e.signal)
}

fn poke(m: &Machine, pid: Pid, addr: u64, data: &[u8]) -> Result<(), Signal> {
    m.cpu(pid).unwrap().write(addr, data).map_err(|e| e.signal)
}

fn pfn_of(m: &Machine, pid: Pid, addr: u64) -> crate::frame::Pfn {
    let mm = m.mm(pid).unwrap();
    let g = crate::sync::rcu::read_lock();
    mm.pt.lockless(&g).lookup(addr).unwrap().0.pfn()
}

#[test]
fn fork_shares_pages_copy_on_write_both_ways() {
    let (m, p) = machine();
    let a = m.mmap(p, 0, 3 * 4096, RW, ANON, -1, 0).unwrap();
    poke(&m, p, a, b"original").unwrap();
    poke(&m, p, a + 4096, b"second").unwrap();
    let pfn = pfn_of(&m, p, a);
    assert!(m.phys().meta(pfn).has(PageFlags::ANON_EXCLUSIVE));
    let c = m.fork(p).unwrap();
    // Shared, write-protected, no longer exclusive; counts exact.
    assert_eq!(pfn_of(&m, c, a), pfn);
    let meta = m.phys().meta(pfn);
    assert_eq!((meta.mapcount(), meta.refcount()), (2, 2));
    assert!(!meta.has(PageFlags::ANON_EXCLUSIVE));
    assert_eq!(peek(&m, c, a, 8).unwrap(), b"original");
    // Child writes: copied; the parent keeps its bytes.
    poke(&m, c, a, b"CHILD").unwrap();
    assert_eq!(peek(&m, c, a, 8).unwrap(), b"CHILDnal");
    assert_eq!(peek(&m, p, a, 8).unwrap(), b"original");
    assert_ne!(pfn_of(&m, c, a), pfn);
    assert_eq!((meta.mapcount(), meta.refcount()), (1, 1));
    // Parent writes its page: it is the only user now, so it is reused in place.
    poke(&m, p, a, b"PARENT").unwrap();
    assert_eq!(pfn_of(&m, p, a), pfn);
    assert!(meta.has(PageFlags::ANON_EXCLUSIVE));
    assert_eq!(peek(&m, c, a, 8).unwrap(), b"CHILDnal");
    // Second page: the parent writes first, the child keeps the old bytes.
    poke(&m, p, a + 4096, b"SECOND").unwrap();
    assert_eq!(peek(&m, c, a + 4096, 6).unwrap(), b"second");
    // A never-touched page reads zero in both and stays private when written.
    poke(&m, c, a + 8192, b"c").unwrap();
    assert_eq!(peek(&m, p, a + 8192, 1).unwrap(), b"\0");
    let copies = m.mm(c).unwrap().counters.cow_copies.sum();
    assert_eq!(copies, 1);
}

#[test]
fn dontfork_wipeonfork_and_locks_are_not_inherited() {
    let (m, p) = machine();
    let a = m.mmap(p, 0, 4096, RW, ANON, -1, 0).unwrap();
    let b = m.mmap(p, 0, 4096, RW, ANON, -1, 0).unwrap();
    let c = m.mmap(p, 0, 4096, RW, ANON, -1, 0).unwrap();
    for x in [a, b, c] {
        poke(&m, p, x, b"data").unwrap();
    }
    let mm = m.mm(p).unwrap();
    mm.madvise(a, 4096, MADV_DONTFORK).unwrap();
    mm.madvise(b, 4096, MADV_WIPEONFORK).unwrap();
    mm.mlock(c, 4096).unwrap();
    let child = m.fork(p).unwrap();
    let cm = m.mm(child).unwrap();
    assert_eq!(peek(&m, child, a, 1), Err(Signal::Segv));
    assert_eq!(peek(&m, child, b, 4).unwrap(), b"\0\0\0\0");
    assert!(cm.vmflags(b).unwrap().contains("wf"));
    assert_eq!(peek(&m, p, b, 4).unwrap(), b"data");
    assert!(mm.vmflags(c).unwrap().contains("lo"));
    assert!(!cm.vmflags(c).unwrap().contains("lo"));
    assert_eq!(cm.smaps_field(c, "Locked").unwrap(), 0);
    assert_eq!(peek(&m, child, c, 4).unwrap(), b"data");
}

#[test]
fn shared_anonymous_memory_stays_shared_across_fork() {
    let (m, p) = machine();
    let a = m
        .mmap(p, 0, 8192, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    poke(&m, p, a, b"before").unwrap();
    let c = m.fork(p).unwrap();
    poke(&m, c, a + 4096, b"from child").unwrap();
    poke(&m, p, a, b"PARENT").unwrap();
    assert_eq!(peek(&m, p, a + 4096, 10).unwrap(), b"from child");
    assert_eq!(peek(&m, c, a, 6).unwrap(), b"PARENT");
    assert!(m.mm(c).unwrap().maps_text().contains("/dev/zero (deleted)"));
}

#[test]
fn memfd_shared_and_private_mappings() {
    let (m, p) = machine();
    let fd = m.memfd_create(p, b"example", MFD_CLOEXEC).unwrap();
    m.ftruncate(p, fd, 3 * 4096).unwrap();
    assert_eq!(m.pwrite(p, fd, b"from pwrite", 4096).unwrap(), 11);
    let m1 = m.mmap(p, 0, 3 * 4096, RW, MAP_SHARED, fd, 0).unwrap();
    let m2 = m
        .mmap(p, 0, 2 * 4096, PROT_READ, MAP_SHARED, fd, 4096)
        .unwrap();
    assert_eq!(peek(&m, p, m2, 11).unwrap(), b"from pwrite");
    poke(&m, p, m1 + 8192, b"shared page").unwrap();
    assert_eq!(peek(&m, p, m2 + 4096, 11).unwrap(), b"shared page");
    let pv = m.mmap(p, 0, 4096, RW, MAP_PRIVATE, fd, 4096).unwrap();
    assert_eq!(peek(&m, p, pv, 4).unwrap(), b"from");
    poke(&m, p, pv, b"private").unwrap();
    assert_eq!(peek(&m, p, m1 + 4096, 11).unwrap(), b"from pwrite");
    m.close(p, fd).unwrap();
    assert_eq!(peek(&m, p, m2, 4).unwrap(), b"from");
    let maps = m.mm(p).unwrap().maps_text();
    assert!(maps.contains("rw-s 00000000 00:01"), "{maps}");
    assert!(maps.contains("r--s 00001000 00:01"), "{maps}");
    assert!(maps.contains("/memfd:example (deleted)"), "{maps}");
    // A child sees the shared pages, and writes through both.
    let c = m.fork(p).unwrap();
    poke(&m, c, m1, b"child").unwrap();
    assert_eq!(peek(&m, p, m1, 5).unwrap(), b"child");
}

#[test]
fn truncate_unmaps_every_mapping_and_sigbus_beyond_eof() {
    let (m, p) = machine();
    let fd = m
        .openat(p, AT_FDCWD, b"short.dat", O_RDWR | O_CREAT, 0o644)
        .unwrap();
    m.pwrite(p, fd, b"just 14 bytes!", 0).unwrap();
    let s = m.mmap(p, 0, 3 * 4096, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(peek(&m, p, s, 14).unwrap(), b"just 14 bytes!");
    assert_eq!(peek(&m, p, s + 4096, 1), Err(Signal::Bus));
    m.ftruncate(p, fd, 2 * 4096).unwrap();
    let pv = m.mmap(p, 0, 2 * 4096, RW, MAP_PRIVATE, fd, 0).unwrap();
    poke(&m, p, pv + 4096, b"cow copy").unwrap();
    let c = m.fork(p).unwrap();
    assert_eq!(peek(&m, c, s + 4096, 1).unwrap(), b"\0");
    // Shrink: pages past the end go from every mapping, private copies included.
    m.ftruncate(p, fd, 10).unwrap();
    assert_eq!(peek(&m, p, s + 4096, 1), Err(Signal::Bus));
    assert_eq!(peek(&m, c, s + 4096, 1), Err(Signal::Bus));
    assert_eq!(peek(&m, p, pv + 4096, 1), Err(Signal::Bus));
    assert_eq!(peek(&m, c, pv + 4096, 1), Err(Signal::Bus));
    assert_eq!(peek(&m, p, s, 14).unwrap(), b"just 14 by\0\0\0\0");
}

#[test]
fn open_modes_decide_what_may_be_mapped() {
    let (m, p) = machine();
    let w = m
        .openat(p, AT_FDCWD, b"f", O_RDWR | O_CREAT, 0o644)
        .unwrap();
    m.ftruncate(p, w, 4096).unwrap();
    let ro = m.openat(p, AT_FDCWD, b"f", O_RDONLY, 0).unwrap();
    let wo = m.openat(p, AT_FDCWD, b"f", O_WRONLY, 0).unwrap();
    assert_eq!(
        m.mmap(p, 0, 4096, RW, MAP_SHARED, ro, 0),
        Err(Errno::EACCES)
    );
    assert_eq!(
        m.mmap(p, 0, 4096, PROT_READ, MAP_SHARED, wo, 0),
        Err(Errno::EACCES)
    );
    let a = m.mmap(p, 0, 4096, RW, MAP_PRIVATE, ro, 0).unwrap();
    let b = m.mmap(p, 0, 4096, PROT_READ, MAP_SHARED, ro, 0).unwrap();
    let mm = m.mm(p).unwrap();
    assert_eq!(mm.mprotect(b, 4096, RW), Err(Errno::EACCES));
    assert!(mm.mprotect(a, 4096, PROT_READ).is_ok());
    assert_eq!(
        m.mmap(p, 0, 4096, PROT_READ, MAP_SHARED, 99, 0),
        Err(Errno::EBADF)
    );
    assert_eq!(
        m.mmap(p, 0, 4096, PROT_READ, MAP_SHARED, ro, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(m.ftruncate(p, ro, 0), Err(Errno::EINVAL));
    assert_eq!(
        m.openat(p, AT_FDCWD, b"nope", O_RDONLY, 0),
        Err(Errno::ENOENT)
    );
}

#[test]
fn file_vmas_merge_only_with_the_same_open_file_and_continuous_offsets() {
    let (m, p) = machine();
    let fd = m
        .openat(p, AT_FDCWD, b"m", O_RDWR | O_CREAT, 0o644)
        .unwrap();
    m.ftruncate(p, fd, 16 * 4096).unwrap();
    let fd2 = m.openat(p, AT_FDCWD, b"m", O_RDWR, 0).unwrap();
    let mm = m.mm(p).unwrap();
    let base = m.mmap(p, 0, 8 * 4096, PROT_NONE, ANON, -1, 0).unwrap();
    let fixed = MAP_SHARED | MAP_FIXED;
    m.mmap(p, base, 4096, PROT_READ, fixed, fd, 0).unwrap();
    m.mmap(p, base + 4096, 4096, PROT_READ, fixed, fd, 4096)
        .unwrap();
    m.mmap(p, base + 2 * 4096, 4096, PROT_READ, fixed, fd, 3 * 4096)
        .unwrap();
    m.mmap(p, base + 3 * 4096, 4096, PROT_READ, fixed, fd2, 4 * 4096)
        .unwrap();
    let v = mm.vmas();
    let ours: Vec<_> = v
        .iter()
        .filter(|v| v.start >= base && v.end <= base + 4 * 4096)
        .map(|v| (v.start - base, v.end - base, v.offset))
        .collect();
    assert_eq!(
        ours,
        [
            (0, 8192, 0),
            (8192, 12288, 3 * 4096),
            (12288, 16384, 4 * 4096)
        ]
    );
}

#[test]
fn punch_hole_unmaps_in_every_process_but_keeps_private_copies() {
    let (m, p) = machine();
    let fd = m.memfd_create(p, b"h", 0).unwrap();
    m.ftruncate(p, fd, 2 * 4096).unwrap();
    let s = m.mmap(p, 0, 2 * 4096, RW, MAP_SHARED, fd, 0).unwrap();
    let pv = m.mmap(p, 0, 2 * 4096, RW, MAP_PRIVATE, fd, 0).unwrap();
    poke(&m, p, s, b"shared").unwrap();
    poke(&m, p, pv + 4096, b"mine").unwrap();
    let c = m.fork(p).unwrap();
    assert_eq!(peek(&m, c, s, 6).unwrap(), b"shared");
    m.mm(c).unwrap().madvise(s, 2 * 4096, MADV_REMOVE).unwrap();
    assert_eq!(peek(&m, p, s, 6).unwrap(), b"\0\0\0\0\0\0");
    assert_eq!(peek(&m, p, pv, 1).unwrap(), b"\0");
    assert_eq!(peek(&m, p, pv + 4096, 4).unwrap(), b"mine");
}

#[test]
fn threads_share_and_exec_replaces_the_address_space() {
    let (m, p) = machine();
    let t = m
        .clone_task(p, CLONE_VM | CLONE_FILES | CLONE_THREAD, Some(500))
        .unwrap();
    assert_eq!(t, 500);
    let a = m.mmap(t, 0, 4096, RW, ANON, -1, 0).unwrap();
    poke(&m, t, a, b"x").unwrap();
    assert_eq!(peek(&m, p, a, 1).unwrap(), b"x");
    let fd = m.memfd_create(t, b"f", 0).unwrap();
    assert!(m.file(p, fd).is_ok());
    m.execve(p).unwrap();
    assert!(!m.exists(t));
    assert_eq!(peek(&m, p, a, 1), Err(Signal::Segv));
    assert_eq!(m.mm(p).unwrap().map_count(), 0);
    m.exit_group(p).unwrap();
    assert_eq!(m.mm(p).unwrap_err(), Errno::ESRCH);
}

#[test]
fn teardown_after_fork_frees_every_frame() {
    let m = Machine::new(Config {
        phys_mem_bytes: 64 << 20,
        ..Config::default()
    })
    .unwrap();
    let baseline = m.phys().frames_in_use();
    let p = m.spawn(None).unwrap();
    let a = m.mmap(p, 0, 64 * 4096, RW, ANON, -1, 0).unwrap();
    m.cpu(p).unwrap().fill(a, 7, 64 * 4096).unwrap();
    let fd = m.memfd_create(p, b"t", 0).unwrap();
    m.ftruncate(p, fd, 8 * 4096).unwrap();
    let s = m.mmap(p, 0, 8 * 4096, RW, MAP_SHARED, fd, 0).unwrap();
    m.cpu(p).unwrap().fill(s, 1, 8 * 4096).unwrap();
    let c = m.fork(p).unwrap();
    m.cpu(c).unwrap().fill(a, 9, 32 * 4096).unwrap();
    m.close(p, fd).unwrap();
    m.exit_group(c).unwrap();
    m.exit_group(p).unwrap();
    crate::sync::rcu::barrier();
    assert_eq!(m.phys().frames_in_use(), baseline);
}

#[test]
fn exit_with_100k_vmas_frees_them_in_one_batch() {
    let config = Config {
        phys_mem_bytes: 512 << 20,
        max_map_count: 1 << 20,
        ..Config::default()
    };
    let m = Machine::new(config).unwrap();
    let p = m.spawn(None).unwrap();
    let mm = m.mm(p).unwrap();
    let base = mm.mmap(0, 100_000 * 4096, PROT_READ, ANON, -1, 0).unwrap();
    // Every other page writable: 100k VMAs that cannot merge.
    for i in 0..50_000u64 {
        mm.mprotect(base + 2 * i * 4096, 4096, RW).unwrap();
    }
    m.cpu(p).unwrap().fill(base, 1, 4096).unwrap();
    assert_eq!(mm.map_count(), 100_000);
    drop(mm);
    crate::sync::rcu::barrier();
    let frames = m.phys().frames_in_use();
    let exit_cost = |pid| {
        let before = crate::sync::rcu::callbacks_queued();
        m.exit_group(pid).unwrap();
        crate::sync::rcu::callbacks_queued() - before
    };
    // The same number of callbacks as the exit of a process with two VMAs: the tree's
    // last snapshot (all VMAs), the page-table batch, the root table.
    let small = m.spawn(None).unwrap();
    let smm = m.mm(small).unwrap();
    let x = smm.mmap(0, 8192, PROT_READ, ANON, -1, 0).unwrap();
    smm.mprotect(x, 4096, RW).unwrap();
    m.cpu(small).unwrap().fill(x, 1, 4096).unwrap();
    drop(smm);
    let small_cost = exit_cost(small);
    let queued = exit_cost(p);
    assert_eq!(queued, small_cost);
    assert!(queued <= 3, "exit queued {queued} RCU callbacks");
    crate::sync::rcu::barrier();
    assert!(m.phys().frames_in_use() < frames);
}

#[test]
fn committed_as_covers_every_process_until_it_exits() {
    let (m, p) = machine();
    m.mmap(p, 0, 16 * 4096, RW, ANON, -1, 0).unwrap();
    m.mmap(p, 0, 4 * 4096, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    assert_eq!(m.committed_as_kb(), 80);
    // The child's private copy is charged again; the shared object is not.
    let c = m.fork(p).unwrap();
    assert_eq!(m.committed_as_kb(), 144);
    m.exit_group(c).unwrap();
    assert_eq!(m.committed_as_kb(), 80);
    m.exit_group(p).unwrap();
    crate::sync::rcu::barrier();
    assert_eq!(m.committed_as_kb(), 0);
}

#[test]
fn memfd_pages_are_committed_while_cached() {
    let (m, p) = machine();
    let fd = m.memfd_create(p, b"acct", 0).unwrap();
    m.ftruncate(p, fd, 8 * 4096).unwrap();
    assert_eq!(m.committed_as_kb(), 0);
    m.pwrite(p, fd, b"x", 4096).unwrap();
    let s = m.mmap(p, 0, 8 * 4096, RW, MAP_SHARED, fd, 0).unwrap();
    poke(&m, p, s + 2 * 4096, b"y").unwrap();
    assert_eq!(m.committed_as_kb(), 8);
    // Shared memory with MAP_NORESERVE is committed page by page too, not whole.
    let nr = MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE;
    let n = m.mmap(p, 0, 16 * 4096, RW, nr, -1, 0).unwrap();
    poke(&m, p, n, b"z").unwrap();
    assert_eq!(m.committed_as_kb(), 12);
    // Truncation returns the pages' charge; exit returns the rest.
    m.ftruncate(p, fd, 4096).unwrap();
    assert_eq!(m.committed_as_kb(), 4);
    m.exit_group(p).unwrap();
    crate::sync::rcu::barrier();
    assert_eq!(m.committed_as_kb(), 0);
}
