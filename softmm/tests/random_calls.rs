//! Bad input never panics: random sequences of system calls with random (often invalid)
//! arguments, and random guest accesses, against one address space. Every call must
//! return a value or an errno, the layout must stay sorted and non-overlapping, and
//! dropping the address space must return every frame.

use proptest::prelude::*;
use softmm::{AddressSpace, Config, PhysMem, abi::*, rcu};

#[derive(Debug, Clone)]
enum Op {
    Mmap(u64, u64, u64, u64),
    Munmap(u64, u64),
    Mprotect(u64, u64, u64),
    Madvise(u64, u64, u64),
    Mremap(u64, u64, u64, u64, u64),
    Brk(u64),
    Mlock(u64, u64, u64),
    Munlock(u64, u64),
    Mlockall(u64),
    Munlockall,
    Msync(u64, u64, u64),
    Write(u64, u16, u8),
    Read(u64, u16),
}

const BASE: u64 = 0x7fff_f700_0000;

/// Addresses near a small window (so calls interact), plus wild values.
fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (0u64..64).prop_map(|p| BASE + p * 4096),
        1 => (0u64..64 * 4096).prop_map(|o| BASE + o),
        1 => any::<u64>(),
        1 => Just(0u64),
    ]
}

fn len() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (0u64..16).prop_map(|p| p * 4096),
        1 => 0u64..70000,
        1 => any::<u64>(),
    ]
}

fn bits(known: u64) -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..=known, 1 => any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    let mmap_flags = prop_oneof![
        4 => Just(MAP_PRIVATE | MAP_ANONYMOUS),
        2 => Just(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
        1 => Just(MAP_SHARED | MAP_ANONYMOUS),
        1 => Just(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE),
        1 => any::<u64>(),
    ];
    prop_oneof![
        (addr(), len(), bits(7), mmap_flags).prop_map(|(a, l, p, f)| Op::Mmap(a, l, p, f)),
        (addr(), len()).prop_map(|(a, l)| Op::Munmap(a, l)),
        (addr(), len(), bits(7)).prop_map(|(a, l, p)| Op::Mprotect(a, l, p)),
        (
            addr(),
            len(),
            prop_oneof![0u64..30, Just(102u64), Just(103u64)]
        )
            .prop_map(|(a, l, adv)| Op::Madvise(a, l, adv)),
        (addr(), len(), len(), 0u64..8, addr())
            .prop_map(|(a, o, n, f, d)| Op::Mremap(a, o, n, f, d)),
        prop_oneof![
            Just(0u64),
            (0u64..32).prop_map(|p| 0x5555_5555_9000 + p * 4096),
            any::<u64>()
        ]
        .prop_map(Op::Brk),
        (addr(), len(), 0u64..3).prop_map(|(a, l, f)| Op::Mlock(a, l, f)),
        (addr(), len()).prop_map(|(a, l)| Op::Munlock(a, l)),
        (0u64..8).prop_map(Op::Mlockall),
        Just(Op::Munlockall),
        (addr(), len(), 0u64..8).prop_map(|(a, l, f)| Op::Msync(a, l, f)),
        (addr(), any::<u16>(), any::<u8>()).prop_map(|(a, n, b)| Op::Write(a, n % 9000, b)),
        (addr(), any::<u16>()).prop_map(|(a, n)| Op::Read(a, n % 9000)),
    ]
}

fn apply(mm: &std::sync::Arc<AddressSpace>, op: &Op) {
    let cpu = mm.cpu();
    let r = match *op {
        Op::Mmap(a, l, p, f) => mm.mmap(a, l, p, f, -1, 0),
        Op::Munmap(a, l) => mm.munmap(a, l),
        Op::Mprotect(a, l, p) => mm.mprotect(a, l, p),
        Op::Madvise(a, l, adv) => mm.madvise(a, l, adv),
        Op::Mremap(a, o, n, f, d) => mm.mremap(a, o, n, f, d),
        Op::Brk(b) => mm.brk(b),
        Op::Mlock(a, l, f) => mm.mlock2(a, l, f),
        Op::Munlock(a, l) => mm.munlock(a, l),
        Op::Mlockall(f) => mm.mlockall(f),
        Op::Munlockall => mm.munlockall(),
        Op::Msync(a, l, f) => mm.msync(a, l, f),
        Op::Write(a, n, b) => {
            let _ = cpu.fill(a, b, u64::from(n));
            Ok(0)
        }
        Op::Read(a, n) => {
            let mut buf = vec![0u8; n as usize];
            let _ = cpu.read(a, &mut buf);
            Ok(0)
        }
    };
    if let Err(e) = r {
        assert!(
            e.0 > 0 && e.name() != "E?",
            "{op:?} returned an unnamed errno {}",
            e.0
        );
    }
}

proptest! {
    // A fixed seed keeps CI deterministic; PROPTEST_RNG_SEED=N explores others.
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x0050_f733),
        ),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_calls_never_panic_and_never_leak(ops in prop::collection::vec(op(), 1..60)) {
        let pm = PhysMem::new(16 << 20).unwrap();
        let base = pm.frames_in_use();
        {
            let mm = AddressSpace::with_phys(&pm, Config::default()).unwrap();
            for op in &ops {
                apply(&mm, op);
                let vmas = mm.vmas();
                for w in vmas.windows(2) {
                    prop_assert!(w[0].end <= w[1].start, "overlap after {op:?}: {vmas:?}");
                }
                for v in &vmas {
                    prop_assert!(v.start < v.end && v.start % 4096 == 0 && v.end % 4096 == 0);
                }
                let text = mm.smaps_text();
                prop_assert_eq!(text.matches("VmFlags:").count(), vmas.len());
            }
        }
        rcu::barrier();
        rcu::barrier();
        prop_assert_eq!(pm.frames_in_use(), base, "frames leaked after {:?}", ops);
    }
}
