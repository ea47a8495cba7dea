//! What `/proc/PID/...` says about a process: memory areas, page presence,
//! mm fields, status lines, open files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use zerocopy::IntoBytes;

use crate::CkptError;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLine {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev: (u32, u32),
    pub inode: u64,
    /// Path or pseudo name (`[heap]`, `[stack]`, `[vdso]`, ...); empty for anonymous.
    pub name: String,
}

impl MapLine {
    /// PROT_* bits.
    pub fn prot(&self) -> u32 {
        u32::from(self.read) | (u32::from(self.write) << 1) | (u32::from(self.exec) << 2)
    }
}

fn read(path: String) -> Result<String, CkptError> {
    std::fs::read_to_string(&path).map_err(|e| CkptError::Io(path, e))
}

/// Parses `/proc/PID/maps`.
pub fn maps(pid: i32) -> Result<Vec<MapLine>, CkptError> {
    parse_maps(&read(format!("/proc/{pid}/maps"))?)
}

/// Parses the text of a maps file.
pub fn parse_maps(text: &str) -> Result<Vec<MapLine>, CkptError> {
    let bad = |l: &str| CkptError::Parse(format!("maps line {l:?}"));
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let range = it.next().ok_or_else(|| bad(line))?;
        let perms = it.next().ok_or_else(|| bad(line))?.as_bytes();
        let offset = it.next().ok_or_else(|| bad(line))?;
        let dev = it.next().ok_or_else(|| bad(line))?;
        let inode = it.next().ok_or_else(|| bad(line))?;
        let name = it.next().unwrap_or("").trim_start().to_string();
        let (s, e) = range.split_once('-').ok_or_else(|| bad(line))?;
        let (maj, min) = dev.split_once(':').ok_or_else(|| bad(line))?;
        if perms.len() < 4 {
            return Err(bad(line));
        }
        out.push(MapLine {
            start: u64::from_str_radix(s, 16).map_err(|_| bad(line))?,
            end: u64::from_str_radix(e, 16).map_err(|_| bad(line))?,
            read: perms[0] == b'r',
            write: perms[1] == b'w',
            exec: perms[2] == b'x',
            shared: perms[3] == b's',
            offset: u64::from_str_radix(offset, 16).map_err(|_| bad(line))?,
            dev: (
                u32::from_str_radix(maj, 16).map_err(|_| bad(line))?,
                u32::from_str_radix(min, 16).map_err(|_| bad(line))?,
            ),
            inode: inode.parse().map_err(|_| bad(line))?,
            name,
        });
    }
    Ok(out)
}

/// A field of `/proc/PID/status` (`Threads`, `TracerPid`, `SigCgt`, ...).
pub fn status_field(pid: i32, name: &str) -> Result<String, CkptError> {
    let text = read(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| CkptError::Parse(format!("no {name} in /proc/{pid}/status")))
}

/// The ID thread or process `tid` knows itself by: its PID or TID in its
/// own PID namespace (the last of `NSpid`), `tid` itself when it shares
/// ours.
pub fn own_id(tid: i32) -> Result<i32, CkptError> {
    let ids = status_field(tid, "NSpid")?;
    ids.split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| CkptError::Parse(format!("NSpid of {tid}: {ids:?}")))
}

/// The process's threads (`/proc/PID/task`), the main one first.
pub fn tids(pid: i32) -> Result<Vec<i32>, CkptError> {
    let dir = format!("/proc/{pid}/task");
    let mut tids: Vec<i32> = std::fs::read_dir(&dir)
        .map_err(|e| CkptError::Io(dir.clone(), e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&t| (t != pid, t));
    Ok(tids)
}

/// The union of signal sets `names` of `/proc/PID/status` (SigPnd,
/// ShdPnd, SigBlk, SigIgn, SigCgt), read at once.
pub fn signal_set(pid: i32, names: &[&str]) -> Result<u64, CkptError> {
    let path = format!("/proc/{pid}/status");
    let text = read(path.clone())?;
    let mut set = 0;
    for name in names {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| CkptError::Parse(format!("no {name} in {path}")))?;
        set |= value;
    }
    Ok(set)
}

/// Fields of `/proc/PID/stat` after the command name, numbered as in
/// proc(5) (field 3 is the state).
pub fn stat_fields(pid: i32) -> Result<Vec<String>, CkptError> {
    let text = read(format!("/proc/{pid}/stat"))?;
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| CkptError::Parse(format!("/proc/{pid}/stat")))?;
    // Pad so that index 3 is the state, as in proc(5).
    let mut v = vec![String::new(), String::new(), String::new()];
    v.extend(rest.split_whitespace().map(str::to_string));
    Ok(v)
}

/// The auxiliary vector as words.
pub fn auxv(pid: i32) -> Result<Vec<u64>, CkptError> {
    let path = format!("/proc/{pid}/auxv");
    let bytes = std::fs::read(&path).map_err(|e| CkptError::Io(path, e))?;
    let mut words = vec![0u64; bytes.len() / 8];
    let whole = words.len() * 8;
    words.as_mut_bytes().copy_from_slice(&bytes[..whole]);
    Ok(words)
}

/// Page presence bits from `/proc/PID/pagemap`.
pub struct Pagemap(File);

/// Page is in RAM.
pub const PM_PRESENT: u64 = 1 << 63;
/// Page is swapped out.
pub const PM_SWAPPED: u64 = 1 << 62;
/// Page is a file page or shared anonymous (not a private copy).
pub const PM_FILE: u64 = 1 << 61;

impl Pagemap {
    pub fn open(pid: i32) -> Result<Pagemap, CkptError> {
        let path = format!("/proc/{pid}/pagemap");
        File::open(&path)
            .map(Pagemap)
            .map_err(|e| CkptError::Io(path, e))
    }

    /// One entry per page of `[start, end)`.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<u64>, CkptError> {
        let n = ((end - start) / 4096) as usize;
        let mut entries = vec![0u64; n];
        self.0
            .read_exact_at(entries.as_mut_bytes(), start / 4096 * 8)
            .map_err(|e| CkptError::Io(format!("pagemap at {start:#x}"), e))?;
        Ok(entries)
    }
}

/// Open file descriptors: (fd, link target).
pub fn fds(pid: i32) -> Result<Vec<(i32, String)>, CkptError> {
    let dir = format!("/proc/{pid}/fd");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)
        .map_err(|e| CkptError::Io(dir.clone(), e))?
        .flatten()
    {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let target = std::fs::read_link(e.path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((fd, target));
    }
    out.sort();
    Ok(out)
}

/// `pos` and `flags` of `/proc/PID/fdinfo/FD`.
pub fn fdinfo(pid: i32, fd: i32) -> Result<(u64, i32), CkptError> {
    let text = read(format!("/proc/{pid}/fdinfo/{fd}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let pos = field("pos:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let flags = field("flags:")
        .and_then(|v| i32::from_str_radix(&v, 8).ok())
        .unwrap_or(0);
    Ok((pos, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let m = parse_maps(
            "55d0c5a00000-55d0c5a02000 r--p 00000000 fe:01 1234   /usr/bin/cat\n7ffd0000-7ffd1000 rw-p 00000000 00:00 0                          [stack]\n7f00-8f00 rw-s 00001000 00:05 77 /dev/zero (deleted)\n",
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name, "/usr/bin/cat");
        assert_eq!(m[0].dev, (0xfe, 1));
        assert_eq!(m[0].prot(), 1);
        assert_eq!(m[1].name, "[stack]");
        assert_eq!(m[1].prot(), 3);
        assert!(m[2].shared);
        assert_eq!(m[2].offset, 0x1000);
        assert!(parse_maps("zzz").is_err());
    }

    #[test]
    fn reads_our_own_process() {
        let me = mosaic_proto::abi::my_pid();
        let maps = maps(me).unwrap();
        assert!(maps.iter().any(|m| m.name == "[stack]"));
        assert!(status_field(me, "Threads").unwrap().parse::<u32>().unwrap() >= 1);
        assert_eq!(stat_fields(me).unwrap()[3].len(), 1);
        assert!(auxv(me).unwrap().len() > 10);
        let stack = maps.iter().find(|m| m.name == "[stack]").unwrap();
        let pm = Pagemap::open(me).unwrap();
        let e = pm.entries(stack.end - 4096, stack.end).unwrap();
        assert_eq!(e.len(), 1);
    }
}
