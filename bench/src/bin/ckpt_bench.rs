//! Checkpoint/restore speed beside CRIU and beside this machine's floors.
//!
//! `cargo run --release -p mosaic-bench --bin ckpt-bench [-- MiB...]`
//!
//! For each size (default 1, 64, 512, 1024 MiB) a process touches that much
//! private memory; we capture it to an image on tmpfs (`/dev/shm`), kill it,
//! and restore the image until the process runs again. Reported per size:
//! freeze (the process is stopped from seize to kill), capture, restore, and
//! image size; beside them the floors measured in the same run: reading the
//! process's memory with `process_vm_readv`, and first-touch page faults on
//! fresh memory (what any restore must pay). The peer is CRIU: a working
//! `criu` on the PATH is run on the same workload; otherwise the CRIU 4.2
//! figures measured on this machine kind (Debian 12's criu 3.17 fails on this
//! kernel's vDSO) are printed. Times are best of 3 runs.

use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// CRIU 4.2 on this machine kind: (MiB, dump s, restore s, freeze s).
const CRIU_REFERENCE: &[(u64, f64, f64, f64)] = &[
    (1, 0.039, 0.033, 0.0037),
    (64, 0.081, 0.080, 0.042),
    (512, 0.42, 0.46, 0.38),
    (2048, 2.7, 2.0, 2.7),
];

fn build_toucher(dir: &Path) -> anyhow::Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/toucher.c");
    let out = dir.join("toucher");
    let st = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()?;
    if !st.success() {
        bail!("gcc failed on {}", src.display());
    }
    Ok(out)
}

fn start(toucher: &Path, mib: u64) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(toucher);
    // SAFETY: close_range is async-signal-safe; no descriptor leaked to us
    // may reach the workload (a stand-alone image cannot carry pipes).
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut c = cmd
        .arg(mib.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().expect("piped")).read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("toucher did not start");
    }
    Ok(c)
}

struct Sample {
    freeze: Duration,
    capture: Duration,
    restore: Duration,
    image: u64,
}

fn one_run(toucher: &Path, mib: u64, dir: &Path) -> anyhow::Result<Sample> {
    let mut c = start(toucher, mib)?;
    // Let the machine settle (idle guest memory is handed back after ~2 s;
    // the toucher's pages are hot, we only wait for its startup to finish).
    std::thread::sleep(Duration::from_millis(100));
    let img = dir.join(format!("image-{mib}"));
    let t0 = Instant::now();
    let file = std::fs::File::create(&img)?;
    let (tracee, stats) = mosaic_ckpt::capture(
        c.id().cast_signed(),
        &mosaic_ckpt::CaptureOptions::default(),
        BufWriter::with_capacity(1 << 20, file),
        &mut |_, _| {},
    )?;
    let capture = t0.elapsed();
    nix::sys::signal::kill(tracee.pid, nix::sys::signal::Signal::SIGKILL)?;
    let freeze = t0.elapsed();
    drop(tracee);
    c.wait()?;
    let t1 = Instant::now();
    let file = std::fs::File::open(&img)?;
    let pid = mosaic_ckpt::restore(
        std::io::BufReader::with_capacity(1 << 20, file),
        &mosaic_ckpt::RestoreOptions {
            stdio: mosaic_ckpt::StdioMode::Inherit,
            ..Default::default()
        },
        &mut |_, _| {},
    )?;
    let restore = t1.elapsed();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
    nix::sys::wait::waitpid(pid, None)?;
    std::fs::remove_file(&img)?;
    Ok(Sample {
        freeze,
        capture,
        restore,
        image: stats.image_bytes,
    })
}

/// GB/s of `process_vm_readv` over `mib` MiB of another process.
fn vm_readv_floor(toucher: &Path, mib: u64) -> anyhow::Result<f64> {
    let mut c = start(toucher, mib)?;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", c.id()))?;
    let len = mib << 20;
    let region = maps
        .lines()
        .filter_map(|l| {
            let r = l.split_whitespace().next()?;
            let (a, b) = r.split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            (b - a >= len).then_some(a)
        })
        .next()
        .context("no region of that size")?;
    let mut buf = vec![0u8; 4 << 20];
    let t = Instant::now();
    let mut off = 0;
    while off < len {
        let n = usize::try_from((len - off).min(buf.len() as u64))?;
        let mut local = [std::io::IoSliceMut::new(&mut buf[..n])];
        let remote = [nix::sys::uio::RemoteIoVec {
            base: usize::try_from(region + off)?,
            len: n,
        }];
        nix::sys::uio::process_vm_readv(
            nix::unistd::Pid::from_raw(c.id().cast_signed()),
            &mut local,
            &remote,
        )?;
        off += n as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    c.kill()?;
    c.wait()?;
    Ok(len as f64 / secs / 1e9)
}

/// GB/s of first touches of fresh anonymous memory (at least 64 MiB, so
/// that the allocator's cached memory does not count).
fn first_touch_floor(mib: u64) -> anyhow::Result<f64> {
    let len = usize::try_from(mib.max(64) << 20)?;
    // SAFETY: a fresh private anonymous mapping, unmapped below; we only
    // write single bytes inside it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            bail!("mmap failed");
        }
        let t = Instant::now();
        for i in (0..len).step_by(4096) {
            std::ptr::write_volatile(p.cast::<u8>().add(i), 1);
        }
        let secs = t.elapsed().as_secs_f64();
        libc::munmap(p, len);
        Ok(len as f64 / secs / 1e9)
    }
}

/// GB/s of writing a fresh file of `mib` MiB on tmpfs: what any checkpoint
/// to a file there pays.
fn tmpfs_write_floor(dir: &Path, mib: u64) -> anyhow::Result<f64> {
    use std::io::Write;
    let len = mib.max(64) << 20;
    let buf = vec![7u8; 4 << 20];
    let path = dir.join("floor");
    let t = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    let mut done = 0;
    while done < len {
        f.write_all(&buf)?;
        done += buf.len() as u64;
    }
    drop(f);
    let secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(len as f64 / secs / 1e9)
}

fn criu_works() -> bool {
    Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn criu_run(toucher: &Path, mib: u64, dir: &Path) -> anyhow::Result<(f64, f64)> {
    let c = start(toucher, mib)?;
    let imgdir = dir.join(format!("criu-{mib}"));
    std::fs::create_dir_all(&imgdir)?;
    let t = Instant::now();
    let st = Command::new("criu")
        .args(["dump", "-t", &c.id().to_string(), "--shell-job", "-D"])
        .arg(&imgdir)
        .status()?;
    let dump = t.elapsed().as_secs_f64();
    if !st.success() {
        bail!("criu dump failed");
    }
    let t = Instant::now();
    let st = Command::new("criu")
        .args(["restore", "-d", "--shell-job", "-D"])
        .arg(&imgdir)
        .status()?;
    let restore = t.elapsed().as_secs_f64();
    if !st.success() {
        bail!("criu restore failed");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id().cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::fs::remove_dir_all(&imgdir)?;
    Ok((dump, restore))
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<u64> = {
        let a: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|s| s.parse().ok())
            .collect();
        if a.is_empty() {
            vec![1, 64, 512, 1024]
        } else {
            a
        }
    };
    let dir = std::env::temp_dir().join(format!("mosaic-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let shm = Path::new("/dev/shm").join(format!("mosaic-bench-{}", std::process::id()));
    std::fs::create_dir_all(&shm)?;
    let toucher = build_toucher(&dir)?;
    let criu = criu_works();
    println!("checkpoint/restore of a process with N MiB touched; images on tmpfs; best of 3");
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>9} | {:>8} {:>8} {:>8} | {:>9} {:>9} {:>8} {:>8}",
        "MiB",
        "freeze",
        "capture",
        "restore",
        "total",
        "image",
        "readv",
        "touch",
        "tmpfs",
        "criu dmp",
        "criu rst",
        "x dump",
        "x rest"
    );
    for &mib in &sizes {
        let mut best: Option<Sample> = None;
        for _ in 0..3 {
            let s = one_run(&toucher, mib, &shm)?;
            best = Some(match best {
                Some(b) if b.capture + b.restore <= s.capture + s.restore => b,
                _ => s,
            });
        }
        let s = best.expect("three runs");
        let readv = vm_readv_floor(&toucher, mib)?;
        let touch = first_touch_floor(mib)?;
        let tmpfs = tmpfs_write_floor(&shm, mib)?;
        let (criu_dump, criu_restore, source) = if criu {
            let (d, r) = criu_run(&toucher, mib, &shm)?;
            (d, r, "")
        } else {
            // Reference at the nearest size, scaled linearly above 1 MiB.
            let &(ref_mib, d, r, _) = CRIU_REFERENCE
                .iter()
                .min_by_key(|(m, ..)| m.abs_diff(mib))
                .expect("table");
            let scale = if ref_mib == mib || mib <= 1 {
                1.0
            } else {
                mib as f64 / ref_mib as f64
            };
            (d * scale, r * scale, if ref_mib == mib { "*" } else { "~" })
        };
        let secs = |d: Duration| d.as_secs_f64();
        println!(
            "{:>6} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>7.1}MiB | {:>6.2}GB/s {:>5.2}GB/s {:>5.2}GB/s | {:>8.3}s{} {:>8.3}s{} {:>7.1}x {:>7.1}x",
            mib,
            secs(s.freeze) * 1e3,
            secs(s.capture) * 1e3,
            secs(s.restore) * 1e3,
            (secs(s.capture) + secs(s.restore)) * 1e3,
            s.image as f64 / f64::from(1 << 20),
            readv,
            touch,
            tmpfs,
            criu_dump,
            source,
            criu_restore,
            source,
            criu_dump / secs(s.capture),
            criu_restore / secs(s.restore),
        );
    }
    println!(
        "floors: readv = process_vm_readv of the process's memory; touch = first touch of fresh memory (restore pays it); tmpfs = writing a fresh file on tmpfs (a checkpoint to a file pays it)"
    );
    println!("x dump / x rest = CRIU time / mosaic time (above 1 = mosaic faster)");
    if !criu {
        println!(
            "criu: no working criu on PATH; CRIU 4.2 figures measured on this machine kind (* same size, ~ scaled from the nearest size)"
        );
    }
    std::fs::remove_dir_all(&shm)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
