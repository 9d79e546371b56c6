//! A toy emulator on softmm: two vCPU threads fetch, decode and run 8-byte instructions
//! (op, imm32) from guest memory while a third thread maps and unmaps; every fault is
//! delivered as the `siginfo` a signal handler would get. `cargo run --example emulator`
use softmm::{AccessFault, AddressSpace, Config, Cpu, SigInfo as Si, abi::*};
use std::{sync::Arc, thread};

const HALT: u8 = 0;
const LOAD: u8 = 1; // acc = [imm]
const STORE: u8 = 2; // [imm] = acc
const INC: u8 = 3; // [imm] += 1 (a guest atomic); count -= 1
const LOOP: u8 = 4; // pc = imm while count > 0

/// Run from `pc` until HALT (`None`) or a fault: the signal it delivers.
fn run(cpu: &Cpu, mut pc: u64, mut count: u32) -> Option<Si> {
    let mut acc = 0u64;
    let mut step = || -> Result<bool, AccessFault> {
        let mut insn = [0u8; 8];
        cpu.fetch(pc, &mut insn)?;
        let imm = u64::from(u32::from_le_bytes(insn[4..].try_into().unwrap()));
        pc += 8;
        match insn[0] {
            HALT => return Ok(false),
            LOAD => acc = cpu.read_u64_le(imm)?,
            STORE => cpu.write_u64_le(imm, acc)?,
            INC => cpu.fetch_add_u64(imm, 1).map(|_| count -= 1)?,
            LOOP if count > 0 => pc = imm,
            _ => {}
        }
        Ok(true)
    };
    loop {
        match step() {
            Ok(true) => continue,
            done => return done.err().map(|fault| fault.siginfo()),
        }
    }
}

pub fn main() {
    let mm: Arc<AddressSpace> = AddressSpace::new(Config::default()).unwrap();
    // Below 2 GiB (MAP_32BIT), so that a 32-bit immediate can name any of it.
    const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;
    let map = |prot| mm.mmap(0, 4096, prot, ANON | MAP_32BIT, -1, 0);
    let [code, data, ro] = [PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE, PROT_READ].map(map);
    let (code, data, ro) = (code.unwrap(), data.unwrap(), ro.unwrap());
    let asm = |p: &[(u8, u64)]| -> Vec<u8> {
        p.iter()
            .flat_map(|&(op, i)| [[op, 0, 0, 0], (i as u32).to_le_bytes()].concat())
            .collect()
    };
    // vCPU 0 then loads from an unmapped page, vCPU 1 stores to a read-only one.
    let p0 = asm(&[(INC, data), (LOOP, code), (STORE, data + 8), (LOAD, 0x40)]);
    let p1 = asm(&[(INC, data), (LOOP, code + 64), (STORE, ro), (HALT, 0)]);
    // The loader writes the read-only code page the way a debugger does.
    let cpu = mm.cpu();
    cpu.write_forced(code, &p0).unwrap();
    cpu.write_forced(code + 64, &p1).unwrap();
    let mm2 = Arc::clone(&mm);
    let churn = thread::spawn(move || {
        for _ in 0..2000 {
            let a = mm2
                .mmap(0, 8192, PROT_READ | PROT_WRITE, ANON, -1, 0)
                .unwrap();
            mm2.cpu().write_u64_le(a + 4096, 7).unwrap();
            mm2.munmap(a, 8192).unwrap();
        }
    });
    let vcpu = |pc| (mm.cpu(), pc);
    let vcpus =
        [vcpu(code), vcpu(code + 64)].map(|(c, pc)| thread::spawn(move || run(&c, pc, 10_000)));
    let [s0, s1] = vcpus.map(|t| t.join().unwrap().expect("a fault"));
    churn.join().unwrap();
    assert_eq!(cpu.read_u64_le(data).unwrap(), 20_000, "no increment lost");
    let segv = |code, addr| Si {
        signo: Si::SIGSEGV,
        code,
        addr,
    };
    assert_eq!(
        (s0, s1),
        (segv(Si::SEGV_MAPERR, 0x40), segv(Si::SEGV_ACCERR, ro))
    );
    let nx = run(&cpu, data, 0).expect("a fault"); // jump into the data page: NX
    assert_eq!(nx, segv(Si::SEGV_ACCERR, data));
    println!("vCPU 0: {s0:?}\nvCPU 1: {s1:?}\nNX fetch: {nx:?}\ncounter: 20000");
}
