//! The codec against fakes: a guest memory of page-aligned regions, a home
//! scratch, and a kernel that reads and writes exactly what each argument
//! kind says the real one does. A call executed directly on the guest's
//! memory must leave that memory, and return, exactly what the same call
//! forwarded (gather, place, the kernel at home, collect, scatter) leaves.
#![expect(
    clippy::cast_possible_truncation,
    reason = "random test values are cut to the width of the field they fill"
)]

use super::*;
use crate::migrate::HomeMsg;
use crate::syscalls::{Class, SYSCALLS, lookup};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A small deterministic generator (xorshift64*), so that every case is
/// reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    /// Random bytes, fewer than `max` of them.
    fn noise(&mut self, max: u64) -> Vec<u8> {
        let n = usize::try_from(self.below(max)).unwrap();
        self.bytes(n)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Region {
    data: Vec<u8>,
    writable: bool,
}

/// Memory as page-aligned regions; an access must fall inside one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FakeMem {
    regions: RefCell<BTreeMap<u64, Region>>,
    /// Writes into a region nobody may write (a test failure).
    violations: RefCell<Vec<u64>>,
}

impl FakeMem {
    fn map(&self, addr: u64, data: Vec<u8>, writable: bool) {
        let len = data.len().max(1).div_ceil(4096) * 4096;
        let mut data = data;
        data.resize(len, 0);
        self.regions
            .borrow_mut()
            .insert(addr, Region { data, writable });
    }
    fn with<T>(
        &self,
        addr: u64,
        len: usize,
        f: impl FnOnce(&mut Region, usize) -> T,
    ) -> Result<T, Fault> {
        let mut regions = self.regions.borrow_mut();
        let (&start, region) = regions.range_mut(..=addr).next_back().ok_or(Fault)?;
        let off = usize::try_from(addr - start).map_err(|_| Fault)?;
        if off
            .checked_add(len)
            .is_none_or(|end| end > region.data.len())
        {
            return Err(Fault);
        }
        Ok(f(region, off))
    }
}

impl GuestMemory for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.with(addr, buf.len(), |r, off| {
            buf.copy_from_slice(&r.data[off..off + buf.len()])
        })
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let writable = self.with(addr, data.len(), |r, off| {
            if r.writable {
                r.data[off..off + data.len()].copy_from_slice(data);
            }
            r.writable
        })?;
        if !writable {
            self.violations.borrow_mut().push(addr);
            return Err(Fault);
        }
        Ok(())
    }
}

/// Home's scratch: one region, reserved anew per call.
#[derive(Default)]
struct FakeScratch {
    mem: FakeMem,
    reserved: u64,
}

const SCRATCH_AT: u64 = 0x7000_0000;

impl Scratch for FakeScratch {
    type Error = Fault;
    fn reserve(&mut self, len: u64) -> Result<u64, Fault> {
        self.reserved = len;
        self.mem = FakeMem::default();
        // Filled with junk: nothing may rely on fresh scratch being zero.
        self.mem
            .map(SCRATCH_AT, vec![0xa5; usize::try_from(len).unwrap()], true);
        Ok(SCRATCH_AT)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        GuestMemory::write(&self.mem, addr, data)
    }
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        GuestMemory::read(&self.mem, addr, buf)
    }
}

/// A kernel that does, for a concrete marshal, what the real one does
/// with such arguments: reads every in-byte (hashed: the answer depends on
/// all of them), then, unless the call fails, writes what each out-kind
/// says, derived from that hash. Pointer values themselves never count
/// (home's differ), nor iovec counts (home passes one iovec).
fn fake_kernel(m: &Marshal, args: &[u64; 6], mem: &FakeMem) -> i64 {
    let a = m.args();
    let mut h = blake3::Hasher::new();
    let iov_counts: Vec<usize> = a
        .iter()
        .filter_map(|x| match *x {
            Arg::Iovec { count, .. } => Some(usize::from(count)),
            _ => None,
        })
        .collect();
    let read = |addr: u64, n: u64| -> Result<Vec<u8>, i64> {
        let mut b = vec![0u8; usize::try_from(n).unwrap()];
        GuestMemory::read(mem, addr, &mut b).map_err(|_| EFAULT)?;
        Ok(b)
    };
    let iovecs = |ptr: u64, count: u64| -> Result<Vec<(u64, u64)>, i64> {
        let raw = read(ptr, count * 16)?;
        Ok(raw
            .chunks(16)
            .map(|c| {
                (
                    u64::from_le_bytes(array_at(c, 0)),
                    u64::from_le_bytes(array_at(c, 8)),
                )
            })
            .collect())
    };
    // Unit caps for the return value, and the reads.
    let mut ret_cap = u64::MAX;
    let mut fails = None;
    for (i, arg) in a.iter().enumerate() {
        let ptr = args[i];
        if matches!(arg, Arg::Int | Arg::Fd) {
            if !iov_counts.contains(&i) {
                h.update(&ptr.to_le_bytes());
            }
            continue;
        }
        h.update(&[u8::from(ptr == 0)]);
        if ptr == 0 {
            continue;
        }
        let r = (|| -> Result<(), i64> {
            match *arg {
                Arg::CStr => {
                    let mut s = Vec::new();
                    loop {
                        let b = read(ptr + s.len() as u64, 1)?[0];
                        if b == 0 {
                            break;
                        }
                        s.push(b);
                    }
                    h.update(&s);
                }
                Arg::InBuf { len } | Arg::Bytes { len } => {
                    h.update(&read(ptr, args[usize::from(len)])?);
                }
                Arg::InStruct { size } | Arg::InOutStruct { size } => {
                    h.update(&read(ptr, u64::from(size))?);
                }
                Arg::OutBuf { len, whole: false } => ret_cap = ret_cap.min(args[usize::from(len)]),
                Arg::OutCounted { size, elem, header } => {
                    ret_cap = ret_cap.min((u64::from(size) - u64::from(header)) / u64::from(elem));
                }
                Arg::SockLen { .. } => {
                    h.update(&read(ptr, 4)?);
                }
                Arg::SockBuf => {
                    let len_at = m.sock_len_of(i).map_or(0, |j| args[j]);
                    if len_at == 0 {
                        return Err(EFAULT);
                    }
                    let v = u32::from_le_bytes(array_at(&read(len_at, 4)?, 0));
                    h.update(&read(ptr, u64::from(v))?);
                }
                Arg::Iovec { count, write } => {
                    let iov = iovecs(ptr, args[usize::from(count)])?;
                    if write {
                        ret_cap = ret_cap.min(iov.iter().map(|v| v.1).sum());
                    } else {
                        for (base, len) in iov {
                            h.update(&read(base, len)?);
                        }
                    }
                }
                Arg::MsgHdr { recv } => {
                    let f = msghdr::parse(&read(ptr, 56)?).unwrap();
                    let iov = iovecs(f.iov, f.iovlen)?;
                    // The kernel ignores a NULL name's length.
                    h.update(&[u8::from(f.name == 0), u8::from(f.control == 0)]);
                    if f.name != 0 {
                        h.update(&f.namelen.to_le_bytes());
                    }
                    h.update(&f.controllen.to_le_bytes());
                    if recv {
                        ret_cap = ret_cap.min(iov.iter().map(|v| v.1).sum());
                    } else {
                        if f.name != 0 {
                            h.update(&read(f.name, u64::from(f.namelen))?);
                        }
                        if f.control != 0 {
                            h.update(&read(f.control, f.controllen)?);
                        }
                        for (base, len) in iov {
                            h.update(&read(base, len)?);
                        }
                    }
                }
                Arg::SigsetPair => {
                    let pair = read(ptr, 16)?;
                    let (set, size) = (
                        u64::from_le_bytes(array_at(&pair, 0)),
                        u64::from_le_bytes(array_at(&pair, 8)),
                    );
                    h.update(&size.to_le_bytes());
                    if set != 0 {
                        if size != 8 {
                            return Err(EINVAL);
                        }
                        h.update(&read(set, 8)?);
                    }
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = r {
            fails = fails.or(Some(e));
        }
    }
    let hash = h.finalize();
    let seed = u64::from_le_bytes(array_at(hash.as_bytes(), 0));
    if let Some(e) = fails {
        return e;
    }
    if seed % 9 == 0 {
        return EINVAL; // a failed call writes nothing
    }
    let ret = if ret_cap == u64::MAX {
        seed % 1000
    } else {
        seed % (ret_cap + 1)
    };
    let mut out_rng = Rng::new(seed);
    let mut put = |addr: u64, n: u64| {
        let b = out_rng.bytes(usize::try_from(n).unwrap());
        GuestMemory::write(mem, addr, &b).expect("the fake kernel writes only where it may");
    };
    let scatter = |iov: Vec<(u64, u64)>, mut n: u64, put: &mut dyn FnMut(u64, u64)| {
        for (base, len) in iov {
            let k = len.min(n);
            if k > 0 {
                put(base, k);
            }
            n -= k;
        }
    };
    for (i, arg) in a.iter().enumerate() {
        let ptr = args[i];
        if ptr == 0 {
            continue;
        }
        match *arg {
            Arg::OutBuf { len, whole } => {
                put(ptr, if whole { args[usize::from(len)] } else { ret })
            }
            Arg::OutStruct { size } | Arg::InOutStruct { size } => put(ptr, u64::from(size)),
            Arg::OutCounted { elem, header, .. } => {
                put(ptr, u64::from(header) + ret * u64::from(elem))
            }
            Arg::SockBuf => {
                let j = m.sock_len_of(i).unwrap();
                let v = u32::from_le_bytes(array_at(&read(args[j], 4).unwrap(), 0));
                let actual = (seed >> 8) % 64;
                put(ptr, actual.min(u64::from(v)));
                GuestMemory::write(mem, args[j], &(actual as u32).to_le_bytes()).unwrap();
            }
            Arg::Iovec { count, write: true } => {
                let iov = iovecs(ptr, args[usize::from(count)]).unwrap();
                scatter(iov, ret, &mut put);
            }
            Arg::MsgHdr { recv: true } => {
                let f = msghdr::parse(&read(ptr, 56).unwrap()).unwrap();
                let actual_name = (seed >> 16) % 130;
                if f.name != 0 {
                    put(f.name, actual_name.min(u64::from(f.namelen)));
                }
                let control = ((seed >> 24) % 50).min(f.controllen);
                if f.control != 0 {
                    put(f.control, control);
                }
                scatter(iovecs(f.iov, f.iovlen).unwrap(), ret, &mut put);
                GuestMemory::write(mem, ptr + 8, &(actual_name as u32).to_le_bytes()).unwrap();
                GuestMemory::write(mem, ptr + 40, &control.to_le_bytes()).unwrap();
                GuestMemory::write(mem, ptr + 48, &((seed >> 32) as i32).to_le_bytes()).unwrap();
            }
            _ => {}
        }
    }
    i64::try_from(ret).unwrap()
}

/// Commands and requests to try for the rows that take one.
const FCNTL_CMDS: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 15, 16, 36, 37, 38, 1035, 1036, 1037, 1038,
];
const IOCTL_REQUESTS: &[u64] = &[
    0x5401, 0x5402, 0x5403, 0x5404, 0x5413, 0x5414, 0x540f, 0x541b, 0x5410, 0x5421, 0x5450,
];

/// A guest's memory being laid out for one call.
struct Layout {
    mem: FakeMem,
    next_at: u64,
}

impl Layout {
    fn map(&mut self, data: Vec<u8>, writable: bool) -> u64 {
        let at = self.next_at;
        self.next_at += (data.len() as u64 + 1).div_ceil(4096) * 4096 + 4096;
        self.mem.map(at, data, writable);
        at
    }
    fn fill(&mut self, n: u64, writable: bool, rng: &mut Rng) -> u64 {
        self.map(rng.bytes(usize::try_from(n).unwrap()), writable)
    }
    /// An iovec array of `count` buffers of random sizes.
    fn iovecs(&mut self, count: u64, writable: bool, rng: &mut Rng) -> u64 {
        let mut raw = Vec::new();
        for _ in 0..count {
            let len = rng.below(100);
            raw.extend_from_slice(&self.fill(len, writable, rng).to_le_bytes());
            raw.extend_from_slice(&len.to_le_bytes());
        }
        self.map(raw, false)
    }
}

/// A call of `row` with valid random arguments in a fresh guest memory.
fn random_call(row: &Syscall, rng: &mut Rng) -> Option<(Marshal, [u64; 6], FakeMem)> {
    let mut g = Layout {
        mem: FakeMem::default(),
        next_at: 0x10_0000,
    };
    let mut args = [0u64; 6];
    // Integers first: lengths and counts are small, so buffers stay small.
    for (i, arg) in row.args.iter().enumerate() {
        if matches!(arg, Arg::Int | Arg::Fd) {
            let max = if rng.chance(2) { 8 } else { 300 };
            args[i] = rng.below(max);
        }
    }
    if row.name == "fcntl" {
        args[1] = FCNTL_CMDS[usize::try_from(rng.below(FCNTL_CMDS.len() as u64)).unwrap()];
    }
    if row.name == "ioctl" {
        args[1] = IOCTL_REQUESTS[usize::try_from(rng.below(IOCTL_REQUESTS.len() as u64)).unwrap()];
    }
    let m = resolve(row, &args).ok()?;
    let concrete = m.args().to_vec();
    // Pointers: NULL now and then, else a region of the right size.
    for (i, arg) in concrete.iter().enumerate() {
        if matches!(arg, Arg::Int | Arg::Fd | Arg::SockLen { .. }) || rng.chance(8) {
            continue; // a SockLen comes with its SockBuf
        }
        args[i] = match *arg {
            Arg::CStr => {
                let mut s: Vec<u8> = (0..rng.below(200))
                    .map(|_| 1 + rng.below(255) as u8)
                    .collect();
                s.push(0);
                g.map(s, false)
            }
            Arg::InBuf { len } | Arg::Bytes { len } => g.fill(args[usize::from(len)], false, rng),
            Arg::InStruct { size } => g.fill(u64::from(size), false, rng),
            Arg::InOutStruct { size } | Arg::OutStruct { size } | Arg::OutCounted { size, .. } => {
                g.fill(u64::from(size), true, rng)
            }
            Arg::OutBuf { len, .. } => g.fill(args[usize::from(len)], true, rng),
            Arg::SockBuf => {
                let v = rng.below(200) as u32;
                let j = m.sock_len_of(i).unwrap();
                args[j] = g.map(v.to_le_bytes().to_vec(), true);
                g.fill(u64::from(v), true, rng)
            }
            Arg::Iovec { count, write } => {
                args[usize::from(count)] = rng.below(5);
                g.iovecs(args[usize::from(count)], write, rng)
            }
            Arg::MsgHdr { recv } => {
                let iovlen = rng.below(4);
                let iov = g.iovecs(iovlen, recv, rng);
                let namelen = rng.below(129);
                let controllen = rng.below(200);
                let name = if rng.chance(4) {
                    0
                } else {
                    g.fill(namelen, recv, rng)
                };
                let control = if rng.chance(4) {
                    0
                } else {
                    g.fill(controllen, recv, rng)
                };
                let f = msghdr::Fields {
                    name,
                    namelen: namelen as u32,
                    iov,
                    iovlen,
                    control,
                    controllen,
                    flags: rng.next() as i32,
                };
                g.map(msghdr::build(&f).to_vec(), recv)
            }
            Arg::SigsetPair => {
                let set = if rng.chance(4) {
                    0
                } else {
                    g.fill(8, false, rng)
                };
                let size: u64 = if rng.chance(5) { 7 } else { 8 };
                let mut pair = set.to_le_bytes().to_vec();
                pair.extend_from_slice(&size.to_le_bytes());
                g.map(pair, false)
            }
            _ => continue,
        };
    }
    Some((m, args, g.mem))
}

/// One case: the direct call and the forwarded one agree.
fn direct_equals_forwarded(row: &Syscall, seed: u64) {
    let mut rng = Rng::new(seed);
    let Some((m, args, guest)) = random_call(row, &mut rng) else {
        return; // made at home: nothing to forward
    };
    let direct = guest.clone();
    let ret_direct = fake_kernel(&m, &args, &direct);

    let forwarded = guest.clone();
    let g = gather(&m, &args, &forwarded)
        .unwrap_or_else(|e| panic!("{} seed {seed}: gather {e}", row.name));
    // The same in-buffers, those over a few bytes read in pieces of 7 as
    // a large call sends them: joined, they are what gather read.
    let mut later = gather_deferring(&m, &args, &forwarded, seed % 97)
        .unwrap_or_else(|e| panic!("{} seed {seed}: gather_deferring {e}", row.name));
    let mut joined = Vec::new();
    while let Some(piece) = later.next_piece(&forwarded, 7).unwrap() {
        assert!(piece.1.len() <= 7 && !piece.1.is_empty(), "{}", row.name);
        crate::migrate::join_parts(&mut joined, vec![piece], MAX_CALL).unwrap();
    }
    assert!(!later.has_deferred(), "{}", row.name);
    crate::migrate::join_parts(&mut joined, later.inbufs.clone(), MAX_CALL).unwrap();
    let mut whole = g.inbufs.clone();
    whole.sort_by_key(|b| b.0);
    joined.sort_by_key(|b| b.0);
    assert_eq!(
        whole, joined,
        "{} seed {seed}: in-buffers read in pieces differ",
        row.name
    );
    let mut home = FakeScratch::default();
    let placed = place(&m, &args, &g.inbufs, &mut home)
        .unwrap_or_else(|e| panic!("{} seed {seed}: place {e:?}", row.name));
    for (i, arg) in m.args().iter().enumerate() {
        if !matches!(arg, Arg::Int | Arg::Fd) && args[i] != 0 {
            assert!(
                placed.args[i] >= SCRATCH_AT && placed.args[i] < SCRATCH_AT + home.reserved,
                "{} seed {seed}: argument {i} not in scratch",
                row.name
            );
        }
    }
    let ret_home = fake_kernel(&m, &placed.args, &home.mem);
    let outbufs = placed.collect(ret_home, &mut home).unwrap();
    // The same answer in pieces of 7 bytes, as a large one comes: written
    // as they come where the argument streams, joined where it does not.
    let pieced = guest.clone();
    let mut kept = Vec::new();
    let mut at: Vec<(u8, u64)> = Vec::new();
    for msg in crate::migrate::result_in_pieces(1, ret_home, outbufs.clone(), 7) {
        let (HomeMsg::SyscallPart { outbufs: piece, .. }
        | HomeMsg::SyscallResult { outbufs: piece, .. }) = msg
        else {
            panic!("{} seed {seed}: not a piece", row.name)
        };
        for (arg, bytes) in piece {
            if !g.streams(arg) {
                crate::migrate::join_parts(&mut kept, vec![(arg, bytes)], MAX_CALL).unwrap();
                continue;
            }
            let from = at.iter().find(|(a, _)| *a == arg).map_or(0, |(_, n)| *n);
            g.scatter_at(&pieced, arg, from, &bytes)
                .unwrap_or_else(|e| panic!("{} seed {seed}: scatter_at {e:?}", row.name));
            at.retain(|(a, _)| *a != arg);
            at.push((arg, from + bytes.len() as u64));
        }
    }
    g.scatter(&pieced, &kept)
        .unwrap_or_else(|e| panic!("{} seed {seed}: scatter of pieces {e:?}", row.name));
    g.scatter(&forwarded, &outbufs)
        .unwrap_or_else(|e| panic!("{} seed {seed}: scatter {e:?}", row.name));
    assert!(
        pieced == forwarded,
        "{} seed {seed}: guest memory differs when the answer came in pieces",
        row.name
    );
    assert_eq!(
        ret_direct, ret_home,
        "{} seed {seed}: return value",
        row.name
    );
    assert!(
        direct == forwarded,
        "{} seed {seed}: guest memory differs after the call",
        row.name
    );
    assert!(home.mem.violations.borrow().is_empty());
}

fn forward_rows() -> impl Iterator<Item = &'static Syscall> {
    SYSCALLS.iter().filter(|s| s.class == Class::Forward)
}

#[test]
fn every_forwarded_row_behaves_as_a_direct_call() {
    let mut made_at_home = Vec::new();
    for row in forward_rows() {
        for seed in 0..48 {
            direct_equals_forwarded(row, seed);
        }
        if resolve(row, &[0; 6]).is_err() && !matches!(row.name, "fcntl" | "ioctl") {
            made_at_home.push(row.name);
        }
    }
    // The rows the codec cannot marshal say so, and are few.
    assert!(made_at_home.contains(&"kexec_load"), "{made_at_home:?}");
    for marshalled in ["keyctl", "shmctl", "semctl", "msgctl"] {
        assert!(!made_at_home.contains(&marshalled), "{made_at_home:?}");
    }
    assert!(made_at_home.len() < 25, "{made_at_home:?}");
}

#[test]
fn sysv_ctl_and_keyctl_buffers_follow_their_command() {
    let kinds = |name: &str, args: [u64; 6]| {
        let row = SYSCALLS.iter().find(|r| r.name == name).unwrap();
        resolve(row, &args).map(|m| m.args().to_vec())
    };
    // msgctl(q, IPC_STAT | IPC_64, buf), shmctl(m, IPC_SET, buf)
    assert_eq!(
        kinds("msgctl", [1, 0x102, 8, 0, 0, 0]).unwrap()[2],
        Arg::OutStruct { size: 120 }
    );
    assert_eq!(
        kinds("shmctl", [1, 1, 8, 0, 0, 0]).unwrap()[2],
        Arg::InStruct { size: 112 }
    );
    // semctl(s, 0, SETVAL, 5): an integer; GETALL: made at home.
    assert_eq!(kinds("semctl", [1, 0, 16, 5, 0, 0]).unwrap()[3], Arg::Int);
    assert!(kinds("semctl", [1, 0, 13, 8, 0, 0]).is_err());
    // keyctl(KEYCTL_READ, key, buf, len), (KEYCTL_SEARCH, ring, type, desc, dest)
    assert_eq!(
        kinds("keyctl", [11, 5, 8, 64, 0, 0]).unwrap()[2],
        Arg::OutBuf {
            len: 3,
            whole: false
        }
    );
    assert_eq!(
        kinds("keyctl", [10, 5, 8, 9, 0, 0]).unwrap()[1..4],
        [Arg::Int, Arg::CStr, Arg::CStr]
    );
    assert!(
        kinds("keyctl", [20, 5, 8, 1, 0, 0]).is_err(),
        "INSTANTIATE_IOV"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn random_calls_behave_as_direct_calls(row in 0..forward_rows().count(), seed in proptest::prelude::any::<u64>()) {
        direct_equals_forwarded(forward_rows().nth(row).unwrap(), seed);
    }
}

/// Random, truncated and flipped blobs for every kind: home answers with
/// an errno or places them inside its room, never panics; a placed call's
/// collection never panics either.
#[test]
fn malformed_requests_get_errors_never_panics() {
    let mut rng = Rng::new(7);
    let mut bad = 0;
    for row in forward_rows() {
        for _ in 0..200 {
            let Some((m, args, guest)) = random_call(row, &mut rng) else {
                continue;
            };
            let mut inbufs = gather(&m, &args, &guest)
                .map(|g| g.inbufs)
                .unwrap_or_default();
            match rng.below(5) {
                0 => {
                    // Truncate or extend one buffer.
                    if let Some(b) = inbufs.first_mut() {
                        let mut v = b.1.to_vec();
                        if rng.chance(2) {
                            v.truncate(usize::try_from(rng.below(v.len() as u64 + 1)).unwrap());
                        } else {
                            v.extend(rng.noise(64));
                            v.push(1);
                        }
                        b.1 = v.into();
                    }
                }
                1 => {
                    // Flip bytes (lengths inside blobs among them).
                    for b in &mut inbufs {
                        let mut v = b.1.to_vec();
                        for _ in 0..4 {
                            if !v.is_empty() {
                                let at = usize::try_from(rng.below(v.len() as u64)).unwrap();
                                v[at] ^= rng.next() as u8 | 1;
                            }
                        }
                        b.1 = v.into();
                    }
                }
                2 => {
                    // Buffers for arguments that take none, or twice.
                    let i = rng.below(8) as u8;
                    inbufs.push((i, rng.noise(300).into()));
                }
                3 => inbufs.clear(),
                _ => {
                    // Pure noise.
                    inbufs = (0..rng.below(4))
                        .map(|_| (rng.below(7) as u8, rng.noise(400).into()))
                        .collect();
                }
            }
            let mut home = FakeScratch::default();
            match place(&m, &args, &inbufs, &mut home) {
                Ok(placed) => {
                    let ret = i64::try_from(rng.below(1 << 20)).unwrap();
                    // The kernel scribbles anywhere in the room.
                    let junk = rng.bytes(usize::try_from(home.reserved).unwrap());
                    home.write(SCRATCH_AT, &junk).unwrap();
                    placed.collect(ret, &mut home).unwrap();
                }
                Err(PlaceError::Bad { errno, .. }) => {
                    assert!(errno < 0);
                    bad += 1;
                }
                Err(PlaceError::Scratch(Fault)) => panic!("{}: placed outside its room", row.name),
            }
        }
    }
    assert!(bad > 1000, "only {bad} malformed requests were refused");
}

/// Answers from home that do not fit what was asked are refused, and
/// nothing is written outside the rooms the guest gave.
#[test]
fn malformed_answers_are_refused_and_stay_in_their_rooms() {
    let mut rng = Rng::new(11);
    let mut refused = 0;
    for row in forward_rows() {
        for _ in 0..100 {
            let Some((m, args, guest)) = random_call(row, &mut rng) else {
                continue;
            };
            let Ok(g) = gather(&m, &args, &guest) else {
                continue;
            };
            let mut home = FakeScratch::default();
            let placed = place(&m, &args, &g.inbufs, &mut home).unwrap();
            let ret = fake_kernel(&m, &placed.args, &home.mem);
            let mut outbufs = placed.collect(ret, &mut home).unwrap();
            match rng.below(4) {
                0 => {
                    for b in &mut outbufs {
                        let mut v = b.1.to_vec();
                        v.extend(rng.noise(5000));
                        v.push(1);
                        b.1 = v.into();
                    }
                }
                1 => outbufs.push((rng.below(7) as u8, rng.bytes(64).into())),
                2 => {
                    for b in &mut outbufs {
                        let mut v = b.1.to_vec();
                        v.truncate(usize::try_from(rng.below(60)).unwrap());
                        b.1 = v.into();
                    }
                }
                _ => {
                    if let Some(b) = outbufs.first().cloned() {
                        outbufs.push(b);
                    }
                }
            }
            if g.scatter(&guest, &outbufs).is_err() {
                refused += 1;
            }
            assert!(
                guest.violations.borrow().is_empty(),
                "{}: wrote into a buffer of the kernel's input",
                row.name
            );
        }
    }
    assert!(
        refused > 500,
        "only {refused} malformed answers were refused"
    );
}

#[test]
fn shapes_resolve_by_their_arguments() {
    let row = |name: &str| SYSCALLS.iter().find(|s| s.name == name).unwrap();
    let arg = |name: &str, args: [u64; 6], i: usize| resolve(row(name), &args).map(|m| m.args()[i]);
    assert_eq!(arg("fcntl", [3, 4, 0o4000, 0, 0, 0], 2), Ok(Arg::Int)); // F_SETFL
    assert_eq!(
        arg("fcntl", [3, 6, 0x1000, 0, 0, 0], 2),
        Ok(Arg::InOutStruct { size: 32 })
    );
    // The kernel's termios (36 bytes), not glibc's (60).
    assert_eq!(
        arg("ioctl", [1, 0x5401, 0x1000, 0, 0, 0], 2),
        Ok(Arg::OutStruct { size: 36 })
    );
    assert!(
        arg("ioctl", [1, 0xdead, 0, 0, 0, 0], 2).is_err(),
        "unknown requests are made at home"
    );
    assert_eq!(
        arg("epoll_wait", [3, 0x1000, 10, 0, 0, 0], 1),
        Ok(Arg::OutCounted {
            size: 120,
            elem: 12,
            header: 0
        })
    );
    assert!(arg("epoll_wait", [3, 0x1000, u64::MAX, 0, 0, 0], 1).is_err());
    assert_eq!(
        arg("setgroups", [2, 0x1000, 0, 0, 0, 0], 1),
        Ok(Arg::InStruct { size: 8 })
    );
    assert_eq!(
        arg("msgrcv", [1, 0x1000, 100, 0, 0, 0], 1),
        Ok(Arg::OutCounted {
            size: 108,
            elem: 1,
            header: 8
        })
    );
    assert_eq!(
        arg("poll", [0x1000, 2, 0, 0, 0, 0], 0),
        Ok(Arg::InOutStruct { size: 16 })
    );
    assert!(arg("poll", [0x1000, 1 << 40, 0, 0, 0, 0], 0).is_err());
    assert_eq!(
        arg("select", [65, 1, 0, 0, 0, 0], 1),
        Ok(Arg::InOutStruct { size: 16 })
    );
    assert_eq!(arg("pselect6", [1, 1, 0, 0, 0, 1], 5), Ok(Arg::SigsetPair));
    assert_eq!(arg("recvmsg", [0; 6], 1), Ok(Arg::MsgHdr { recv: true }));
    assert!(
        resolve(lookup(299).unwrap(), &[0; 6]).is_err(),
        "recvmmsg is made at home"
    );
    let f = msghdr::Fields {
        name: 1,
        namelen: 2,
        iov: 3,
        iovlen: 4,
        control: 5,
        controllen: 6,
        flags: -7,
    };
    assert_eq!(msghdr::parse(&msghdr::build(&f)), Some(f));
    assert_eq!(msghdr::parse(&[0; 55]), None);
}

#[test]
fn big_reads_and_writes_are_made_short_not_refused() {
    // read(0, buf, 100 MiB): home reads at most MAX_BUF, as a short read.
    let read = lookup(0).unwrap();
    let args = [0, 0x10_0000, 100 << 20, 0, 0, 0];
    let m = resolve(read, &args).unwrap();
    let guest = FakeMem::default();
    guest.map(0x10_0000, vec![0; 4096], true);
    let g = gather(&m, &args, &guest).unwrap();
    let mut home = FakeScratch::default();
    let placed = place(&m, &args, &g.inbufs, &mut home).unwrap();
    assert_eq!(placed.args[2], MAX_BUF);
    // write(1, buf, 100 MiB) sends MAX_BUF bytes and asks for that many.
    let write = lookup(1).unwrap();
    let guest = FakeMem::default();
    guest.map(0x10_0000, vec![7; usize::try_from(MAX_BUF).unwrap()], false);
    let args = [1, 0x10_0000, 100 << 20, 0, 0, 0];
    let m = resolve(write, &args).unwrap();
    let g = gather(&m, &args, &guest).unwrap();
    assert_eq!(g.inbufs[0].1.len() as u64, MAX_BUF);
    let placed = place(&m, &args, &g.inbufs, &mut home).unwrap();
    assert_eq!(placed.args[2], MAX_BUF);
}
