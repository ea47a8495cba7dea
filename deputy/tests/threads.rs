//! A multi-threaded placeholder, home's side: a python3 with three
//! threads is captured with every thread and served, a test thread
//! playing the remote over a socket pair. Each thread's call is made in
//! its own placeholder thread, and one blocked there does not hold up the
//! others; a cancelled one ends as interrupted, and the thread goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mosaic_deputy::Outcome;
use mosaic_proto::abi;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{HomeMsg, Link, LinkError, LinkExt, RemoteMsg};

/// Frames over a stream: a little-endian u32 length, then the frame.
struct Framed(UnixStream);

impl Link for Framed {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let len = u32::try_from(frame.len()).expect("small frames");
        self.0
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.0.write_all(frame))
            .map_err(|_| LinkError::Closed)
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).map_err(|_| LinkError::Closed)?;
        let len = u32::from_le_bytes(len) as usize;
        assert!(len < 64 << 20, "a frame of {len} bytes");
        let mut frame = vec![0; len];
        self.0
            .read_exact(&mut frame)
            .map_err(|_| LinkError::Closed)?;
        Ok(frame)
    }
    fn raw_fd(&self) -> Option<i32> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.0))
    }
}

/// Three threads: main and two sleepers, the second at nice 7 (a thread's
/// own: `getpriority` answers 20 - nice for the calling thread).
const PROGRAM: &str = "\
import os, threading, time
def nice():
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 7)
    time.sleep(60)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
threading.Thread(target=nice, daemon=True).start()
time.sleep(60)
";

/// Plays the remote's start: takes the image home sends and says the
/// guest runs; the image's chunks.
fn started(link: &mut Framed) -> Vec<mosaic_proto::migrate::ByteBuf> {
    let mut image = Vec::new();
    loop {
        match link.recv_msg::<HomeMsg>().unwrap() {
            HomeMsg::ImageEnd => break,
            HomeMsg::ImageChunk(b) => image.push(b),
            HomeMsg::Begin { .. } => {}
            other => panic!("{other:?} in the image"),
        }
    }
    link.send_msg(&RemoteMsg::Started { guest_pid: 4242 })
        .unwrap();
    image
}

/// Migrates process `pid` with every thread over `home_end` (the test's
/// thread plays the remote at the other end) and serves it until it ends
/// or comes home.
fn migrate_and_serve(pid: i32, home_end: UnixStream) -> Outcome<()> {
    let mut link = Framed(home_end);
    let opts = mosaic_ckpt::CaptureOptions {
        threads: true,
        ..Default::default()
    };
    let p = mosaic_deputy::migrate::<()>(pid, "node1", &mut link, &opts, false).expect("migrated");
    let (_commands, incoming) = std::sync::mpsc::channel();
    p.serve(&mut link, &incoming).expect("served")
}

fn call(tid: i32, nr: i64, args: [u64; 6]) -> RemoteMsg {
    RemoteMsg::Syscall {
        tid,
        nr: abi::nr(nr),
        args,
        inbufs: Vec::new(),
    }
}

/// The python3 at home, its parent a shell that says how it ended (the
/// deputy traces it): the shell, its stdin, its output, the PID, the TIDs.
fn python() -> (
    std::process::Child,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
    i32,
    Vec<i32>,
) {
    // Its parent is a shell that says how it ended (the deputy traces it).
    let mut shell = Command::new("sh")
        .args([
            "-c",
            &format!(
                "exec 3<&0; python3 -c \"{PROGRAM}\" <&3 3<&- & echo $!; wait $!; echo status=$?"
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh");
    let stdin = shell.stdin.take().unwrap();
    let mut out = BufReader::new(shell.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    let t = Instant::now();
    let tids = loop {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "python3 never had its threads"
        );
        std::thread::sleep(Duration::from_millis(10));
        let tids = mosaic_ckpt::procfs::tids(pid).unwrap();
        let nice_of = |tid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(") ").next().map(str::to_string))
                .and_then(|s| s.split_whitespace().nth(16).map(str::to_string))
        };
        if tids.len() == 3 && nice_of(tids[2]).as_deref() == Some("7") {
            break tids;
        }
    };
    (shell, stdin, out, pid, tids)
}

#[test]
fn each_threads_call_is_made_in_its_placeholder_thread_and_a_blocked_one_holds_up_none() {
    let (mut shell, mut stdin, mut out, pid, tids) = python();
    let (plain, niced) = (tids[1], tids[2]);

    let (home_end, remote_end) = UnixStream::pair().unwrap();
    // A home that never answers fails the test instead of hanging it.
    remote_end
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let remote = std::thread::spawn(move || {
        let mut link = Framed(remote_end);
        started(&mut link);
        // A call cancelled as soon as sent (before its thread's tracer
        // began it, most runs) is answered interrupted, not made: made,
        // the read would wait for ever.
        link.send_msg(&call(plain, libc::SYS_read, [0, 0x1000, 3, 0, 0, 0]))
            .unwrap();
        link.send_msg(&RemoteMsg::Cancel { tid: plain }).unwrap();
        match link.recv_msg::<HomeMsg>().unwrap() {
            HomeMsg::SyscallResult { tid, ret, .. } => {
                assert_eq!(tid, plain);
                assert!((-514..=-512).contains(&ret), "cancelled at once: {ret}");
            }
            other => panic!("{other:?} for a cancelled call"),
        }
        // The plain thread reads the home pipe, which is empty.
        link.send_msg(&call(plain, libc::SYS_read, [0, 0x1000, 3, 0, 0, 0]))
            .unwrap();
        let prio = [0; 6]; // getpriority(PRIO_PROCESS, 0): the caller's
        link.send_msg(&call(niced, libc::SYS_getpriority, prio))
            .unwrap();
        link.send_msg(&call(pid, libc::SYS_getpriority, prio))
            .unwrap();
        let mut results = Vec::new();
        while results.len() < 4 {
            match link.recv_msg::<HomeMsg>().unwrap() {
                HomeMsg::SyscallResult { tid, ret, outbufs } => {
                    results.push((tid, ret, outbufs));
                    if results.len() == 2 {
                        // Both answered while the read waits: cancelled,
                        // it ends as interrupted.
                        link.send_msg(&RemoteMsg::Cancel { tid: plain }).unwrap();
                    }
                    if results.len() == 3 {
                        // Made again, and fed.
                        link.send_msg(&call(plain, libc::SYS_read, [0, 0x1000, 3, 0, 0, 0]))
                            .unwrap();
                        std::thread::sleep(Duration::from_millis(50));
                        stdin.write_all(b"hey").unwrap();
                    }
                }
                HomeMsg::Signal { signal } => panic!("signal {signal} relayed: the cancel's?"),
                other => panic!("{other:?} while in calls"),
            }
        }
        link.send_msg(&RemoteMsg::Exited {
            code: 3,
            cpu: CpuTime::default(),
        })
        .unwrap();
        results
    });
    let outcome = migrate_and_serve(pid, home_end);
    assert!(matches!(outcome, Outcome::Exited(3)), "{outcome:?}");
    let results = remote.join().unwrap();
    let got = |tid| results.iter().find(|r| r.0 == tid).cloned();
    assert_eq!(got(niced).map(|r| r.1), Some(20 - 7), "{results:?}");
    assert_eq!(got(pid).map(|r| r.1), Some(20), "{results:?}");
    let reads: Vec<_> = results.iter().filter(|r| r.0 == plain).collect();
    assert_eq!(reads.len(), 2, "{results:?}");
    assert!(
        (-514..=-512).contains(&reads[0].1),
        "the cancelled read ends interrupted: {results:?}"
    );
    let read = reads[1].clone();
    assert_eq!(read.1, 3, "{results:?}");
    assert_eq!(
        read.2
            .iter()
            .flat_map(|(_, b)| b.to_vec())
            .collect::<Vec<_>>(),
        b"hey"
    );
    assert_eq!(
        results.last().map(|r| r.0),
        Some(plain),
        "the read last: {results:?}"
    );
    let mut end = String::new();
    out.read_line(&mut end).unwrap();
    assert_eq!(end.trim(), "status=3");
    let _ = shell.wait();
}

/// A large call of one thread comes in pieces (`SyscallPart`s, then its
/// `Syscall` with the rest), another thread's small call between them:
/// the router joins the pieces and the write is made whole, once; a call
/// withdrawn after a piece (`Cancel`) is dropped, neither made nor
/// answered.
#[test]
fn a_call_in_pieces_is_joined_and_one_withdrawn_is_dropped() {
    let (mut shell, _stdin, mut out, pid, tids) = python();
    let (plain, niced) = (tids[1], tids[2]);
    const LEN: usize = 3 * (64 << 10) + 8192;
    let data: Vec<u8> = (0..LEN).map(|i| u8::try_from(i % 251).unwrap()).collect();
    // Its stdout is our pipe: read while it writes.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        out.read_to_end(&mut all).unwrap();
        all
    });
    let (home_end, remote_end) = UnixStream::pair().unwrap();
    remote_end
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let sent = data.clone();
    let remote = std::thread::spawn(move || {
        let mut link = Framed(remote_end);
        started(&mut link);
        let part = |tid: i32, bytes: &[u8]| RemoteMsg::SyscallPart {
            tid,
            inbufs: vec![(1, bytes.to_vec().into())],
        };
        // Begun and withdrawn: nothing of it runs.
        link.send_msg(&part(plain, &[b'x'; 64 << 10])).unwrap();
        link.send_msg(&RemoteMsg::Cancel { tid: plain }).unwrap();
        // write(1, buf, LEN) in pieces, a small call between them.
        let (first, rest) = sent.split_at(64 << 10);
        link.send_msg(&part(plain, first)).unwrap();
        link.send_msg(&call(niced, libc::SYS_getpriority, [0; 6]))
            .unwrap();
        let (second, rest) = rest.split_at(64 << 10);
        let (third, last) = rest.split_at(64 << 10);
        link.send_msg(&part(plain, second)).unwrap();
        link.send_msg(&part(plain, third)).unwrap();
        link.send_msg(&RemoteMsg::Syscall {
            tid: plain,
            nr: abi::nr(libc::SYS_write),
            args: [1, 0x1000, u64::try_from(LEN).unwrap(), 0, 0, 0],
            inbufs: vec![(1, last.to_vec().into())],
        })
        .unwrap();
        let mut results = Vec::new();
        while results.len() < 2 {
            match link.recv_msg::<HomeMsg>().unwrap() {
                HomeMsg::SyscallResult { tid, ret, .. } => results.push((tid, ret)),
                other => panic!("{other:?} while in calls"),
            }
        }
        link.send_msg(&RemoteMsg::Exited {
            code: 3,
            cpu: CpuTime::default(),
        })
        .unwrap();
        results
    });
    let outcome = migrate_and_serve(pid, home_end);
    assert!(matches!(outcome, Outcome::Exited(3)), "{outcome:?}");
    let results = remote.join().unwrap();
    assert!(results.contains(&(niced, 20 - 7)), "{results:?}");
    assert!(
        results.contains(&(plain, i64::try_from(LEN).unwrap())),
        "{results:?}"
    );
    let all = reader.join().unwrap();
    assert!(all.len() >= LEN, "{} bytes written", all.len());
    assert!(all[..LEN] == data[..], "the joined write's bytes differ");
    assert_eq!(String::from_utf8_lossy(&all[LEN..]).trim(), "status=3");
    let _ = shell.wait();
}

#[test]
fn a_process_coming_home_is_restored_into_every_placeholder_thread() {
    let (mut shell, _stdin, mut out, pid, tids) = python();
    let (home_end, remote_end) = UnixStream::pair().unwrap();
    remote_end
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let remote = std::thread::spawn(move || {
        let mut link = Framed(remote_end);
        let image = started(&mut link);
        // Comes home as it left.
        link.send_msg(&RemoteMsg::Returning {
            reason: "a test".into(),
            next: None,
        })
        .unwrap();
        for b in image {
            link.send_msg(&RemoteMsg::ImageChunk(b)).unwrap();
        }
        link.send_msg(&RemoteMsg::ImageEnd).unwrap();
        loop {
            match link.recv_msg::<HomeMsg>().unwrap() {
                HomeMsg::Arrived => break,
                HomeMsg::Signal { .. } => {}
                other => panic!("{other:?} while it comes home"),
            }
        }
        link.send_msg(&RemoteMsg::Gone { signals: vec![] }).unwrap();
    });
    let outcome = migrate_and_serve(pid, home_end);
    assert!(matches!(outcome, Outcome::Home { .. }), "{outcome:?}");
    remote.join().unwrap();
    // Every thread is back, untraced, the niced one still at nice 7.
    assert_eq!(mosaic_ckpt::procfs::tids(pid).unwrap(), tids);
    for tid in &tids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
        assert!(status.contains("TracerPid:\t0\n"), "{status}");
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{}/stat", tids[2])).unwrap();
    let nice = stat.rsplit(") ").next().unwrap().split_whitespace().nth(16);
    assert_eq!(nice, Some("7"), "{stat}");
    // And it runs: python3 ends by SIGTERM as it would have.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill takes integers.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut end = String::new();
    out.read_line(&mut end).unwrap();
    assert_eq!(end.trim(), "status=143");
    let _ = shell.wait();
}
