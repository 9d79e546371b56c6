//! A translation is an owned frame reference: while it is held the frame stays allocated,
//! so bytes read through it after the mapping went are the old mapping's, never those
//! of whatever maps the memory next.
#![cfg(not(any(loom, shuttle)))]

use softmm::{Access, AddressSpace, Config, abi::*, rcu};

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

#[test]
fn a_held_translation_keeps_its_frame_past_munmap() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let cpu = mm.cpu();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    cpu.write(a, b"old bytes").unwrap();
    let frame = cpu.get_page(a, Access::Read).unwrap();
    mm.munmap(a, 4096).unwrap();
    rcu::barrier();
    // New memory, written everywhere: none of it may land in the held frame.
    let pages = 256;
    let b = mm.mmap(0, pages * 4096, RW, ANON, -1, 0).unwrap();
    cpu.fill(b, 0xee, pages * 4096).unwrap();
    for p in 0..pages {
        let other = cpu.get_page(b + p * 4096, Access::Read).unwrap();
        assert_ne!(other.pfn(), frame.pfn(), "page {p} reuses a held frame");
    }
    let mut buf = [0u8; 9];
    frame.read(0, &mut buf);
    assert_eq!(&buf, b"old bytes");
    // Dropping the last reference frees the frame.
    let before = mm.phys().frames_in_use();
    drop(frame);
    assert_eq!(mm.phys().frames_in_use(), before - 1);
}

#[test]
fn a_held_translation_keeps_the_frame_copy_on_write_replaced() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let cpu = mm.cpu();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    cpu.write(a, b"parent").unwrap();
    let child = mm.fork().unwrap();
    let ccpu = child.cpu();
    let held = ccpu.get_page(a, Access::Read).unwrap();
    // Both writes break copy-on-write. The held reference counts: the last mapping of
    // the shared frame does not reuse it (its count says someone else holds it), so
    // both processes end on copies and the held frame keeps the bytes it had.
    ccpu.write(a, b"child!").unwrap();
    cpu.write(a, b"PARENT").unwrap();
    let mut buf = [0u8; 6];
    held.read(0, &mut buf);
    assert_eq!(&buf, b"parent");
    for (who, c, bytes) in [("parent", &cpu, b"PARENT"), ("child", &ccpu, b"child!")] {
        let now = c.get_page(a, Access::Read).unwrap();
        assert_ne!(now.pfn(), held.pfn(), "the {who} maps a copy");
        now.read(0, &mut buf);
        assert_eq!(&buf, bytes);
    }
}
