//! Fault-path probe under layout churn: one thread first-writes every page of a fresh 64 MiB region
//! (20 rounds) while another maps, protects and unmaps 16 KiB in a region of its own, then
//! prints the time and how many faults ran under a VMA read lock versus fell back to
//! `mmap_lock`. `QUIET=1` leaves the second thread idle; `SPIN=1` keeps it busy on private
//! memory only (a control: what a busy neighbour costs with nothing shared).
//!
//! `cargo run --release -p softmm --example fault_churn_probe`

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::Relaxed},
};

use softmm::{AddressSpace, Config, abi::*};

fn main() -> Result<(), softmm::Errno> {
    let mm = AddressSpace::new(Config::default())?;
    let churn = mm.mmap(0, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
    let quiet = std::env::var("QUIET").is_ok();
    let spin = std::env::var("SPIN").is_ok();
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (mm, stop) = (Arc::clone(&mm), Arc::clone(&stop));
        std::thread::spawn(move || -> Result<u64, softmm::Errno> {
            let a = (churn + (2 << 20)) & !((2 << 20) - 1);
            let mut rounds = 0u64;
            let mut buf = vec![0u8; 16384];
            while spin && !stop.load(Relaxed) {
                // Control: busy on private memory only, sharing nothing with the faulter.
                buf.iter_mut().for_each(|b| *b = b.wrapping_add(1));
                std::hint::black_box(&mut buf);
                rounds += 1;
            }
            while !quiet && !spin && !stop.load(Relaxed) {
                let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
                mm.mmap(a, 16384, PROT_READ | PROT_WRITE, fixed, -1, 0)?;
                mm.mprotect(a, 16384, PROT_READ)?;
                mm.munmap(a, 16384)?;
                rounds += 1;
            }
            Ok(rounds)
        })
    };
    let cpu = mm.cpu();
    let t0 = std::time::Instant::now();
    for _ in 0..20 {
        let len = 64 << 20;
        let r = mm.mmap(
            0,
            len,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        )?;
        for p in 0..len / 4096 {
            cpu.write(r + p * 4096, &[1])
                .map_err(|_| softmm::Errno::EFAULT)?;
        }
        mm.munmap(r, len)?;
    }
    let elapsed = t0.elapsed();
    stop.store(true, Relaxed);
    let rounds = churner.join().map_err(|_| softmm::Errno::EINVAL)??;
    let c = &mm.counters;
    println!(
        "{elapsed:?}: {} faults, {} under a VMA lock, {} fell back; churn rounds {rounds}",
        c.faults.sum(),
        c.vma_lock_faults.sum(),
        c.vma_lock_fallbacks.sum(),
    );
    Ok(())
}
