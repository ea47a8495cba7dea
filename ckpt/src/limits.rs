//! Resource limits, capture and restore side by side. They travel with the
//! process so that its own kernel enforces them wherever it runs (a
//! `ulimit -s unlimited` recursion, `ulimit -n`): a restored process would
//! otherwise run under the restorer's limits (mosaicd's, with its raised
//! RLIMIT_NOFILE).
//!
//! Read from `/proc/PID/limits`, which anyone may read, rather than with
//! `prlimit` on the process, which needs CAP_SYS_RESOURCE for another
//! user's process (root here has none). Set by `prlimit64` injected into
//! the restored process itself, which may lower any limit and raise a soft
//! one up to its hard one; a hard limit above the restorer's cannot be
//! given back, and the restore fails saying so (the process stays where it
//! was).

use crate::CkptError;
use crate::ptrace::Tracee;
use mosaic_proto::image::{ImageMeta, Rlimit};

/// Names of the limits in `/proc/PID/limits`, in resource order
/// (RLIMIT_CPU = 0 .. RLIMIT_RTTIME = 15), as fs/proc/base.c prints them.
const NAMES: [&str; 16] = [
    "Max cpu time",
    "Max file size",
    "Max data size",
    "Max stack size",
    "Max core file size",
    "Max resident set",
    "Max processes",
    "Max open files",
    "Max locked memory",
    "Max address space",
    "Max file locks",
    "Max pending signals",
    "Max msgqueue size",
    "Max nice priority",
    "Max realtime priority",
    "Max realtime timeout",
];

/// The limits of process `pid`.
pub fn capture(pid: i32) -> Result<Vec<Rlimit>, CkptError> {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path).map_err(|e| CkptError::Io(path.clone(), e))?;
    parse(&text).ok_or(CkptError::Parse(path))
}

fn parse(text: &str) -> Option<Vec<Rlimit>> {
    let value = |v: &str| -> Option<u64> {
        if v == "unlimited" {
            Some(u64::MAX) // RLIM_INFINITY
        } else {
            v.parse().ok()
        }
    };
    let mut out = Vec::new();
    for (resource, name) in NAMES.iter().enumerate() {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let mut words = line[name.len()..].split_whitespace();
        out.push(Rlimit {
            resource: u32::try_from(resource).unwrap_or(u32::MAX), // below 16
            soft: value(words.next()?)?,
            hard: value(words.next()?)?,
        });
    }
    Some(out)
}

/// A limit in seconds lowered by `by` (whole seconds: the kernel then
/// stops the process within the second after its total reaches the limit,
/// never before; never below 1, the least limit there is).
fn lower(v: u64, by: u64) -> u64 {
    if v == u64::MAX {
        v
    } else {
        v.saturating_sub(by).max(1)
    }
}

/// Gives the restored process the image's limits (at the end of a
/// restore: the memory it maps does not count against them twice), its
/// RLIMIT_CPU as `cpu` says.
pub(crate) fn restore(
    t: &mut Tracee,
    meta: &ImageMeta,
    data: u64,
    cpu: crate::CpuLimit,
) -> Result<(), CkptError> {
    let used = meta.cpu_total().total_ns() / 1_000_000_000;
    for l in &meta.rlimits {
        let l = &match cpu {
            _ if l.resource != libc::RLIMIT_CPU => *l,
            crate::CpuLimit::AsImaged => *l,
            crate::CpuLimit::KeepOwn => continue,
            crate::CpuLimit::CountImage => Rlimit {
                soft: lower(l.soft, used),
                hard: lower(l.hard, used),
                ..*l
            },
        };
        let mut new = [0u8; 16];
        new[..8].copy_from_slice(&l.soft.to_le_bytes());
        new[8..].copy_from_slice(&l.hard.to_le_bytes());
        t.write_mem(data, &new)?;
        let r = t.syscall(
            libc::SYS_prlimit64,
            [0, u64::from(l.resource), data, 0, 0, 0],
        )?;
        if r == -i64::from(libc::EPERM) {
            let name = NAMES.get(l.resource as usize).copied().unwrap_or("a limit");
            let show = |v: u64| {
                if v == u64::MAX {
                    "unlimited".to_string()
                } else {
                    v.to_string()
                }
            };
            return Err(CkptError::Restore(format!(
                "cannot give it its limit \"{name}\" (soft {}, hard {}): a hard limit above this node's own cannot be raised without CAP_SYS_RESOURCE; raise mosaicd's limits here",
                show(l.soft),
                show(l.hard)
            )));
        }
        if r < 0 {
            return Err(CkptError::Injected {
                what: "prlimit64",
                errno: nix::errno::Errno::from_raw(i32::try_from(-r).unwrap_or(libc::EINVAL)),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_limits_parse_in_resource_order() {
        let mine = capture(mosaic_proto::abi::my_pid()).unwrap();
        assert_eq!(mine.len(), 16);
        for (i, l) in mine.iter().enumerate() {
            assert_eq!(l.resource as usize, i);
            assert!(l.soft <= l.hard, "{l:?}");
        }
        // RLIMIT_NOFILE as getrlimit says it.
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one struct rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
        assert_eq!((mine[7].soft, mine[7].hard), (r.rlim_cur, r.rlim_max));
        assert_eq!(parse("Limit Soft Hard\nMax cpu time unlimited\n"), None);
    }
}
