//! A multi-threaded guest, the remote's side: a python3 with a thread
//! blocked in `read(0)` is captured at home with every thread and served
//! by the remote over a socket pair, a test thread playing home. Each
//! thread's calls come with its home TID, and one thread's call waiting at
//! home does not hold up another's. Needs root (a guest runs as nobody).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mosaic_proto::abi;
use mosaic_proto::migrate::{HomeMsg, ImageOut, Link, LinkError, LinkExt, RemoteMsg};
use mosaic_remote::{GuestPolicy, serve};

/// Frames over a stream: a little-endian u32 length, then the frame;
/// nothing is read ahead of a frame, so the stream's descriptor polls for
/// frames.
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

/// A call home saw: the thread's TID, the number, the bytes that went in.
type Call = (i32, u32, Vec<u8>);

/// The program: a thread reads 3 bytes of stdin and writes them back; the
/// main thread sleeps, writes "tick", and joins it.
const PROGRAM: &str = "\
import os, threading, time
def reader():
    data = os.read(0, 3)
    os.write(1, b'got ' + data)
t = threading.Thread(target=reader)
t.start()
time.sleep(1)
os.write(1, b'tick')
t.join()
os._exit(0)
";

/// The python3 at home, captured once its reader waits in `read(0)` and
/// its main thread sleeps: (home PID, the reader's TID, the image).
fn captured() -> (i32, i32, Vec<u8>) {
    let mut py: Child = Command::new("python3")
        .args(["-c", PROGRAM])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3");
    let pid = abi::pid(py.id());
    let t = Instant::now();
    let syscall_of = |tid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).unwrap_or_default()
    };
    let reader = loop {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "python3 never got there"
        );
        std::thread::sleep(Duration::from_millis(10));
        let tids = mosaic_ckpt::procfs::tids(pid).unwrap();
        if let [main, reader] = tids[..]
            && syscall_of(main).starts_with(&format!("{} ", libc::SYS_clock_nanosleep))
            && syscall_of(reader).starts_with(&format!("{} ", libc::SYS_read))
        {
            break reader;
        }
    };
    let mut image = Vec::new();
    let (tracee, stats) = mosaic_ckpt::capture(
        pid,
        &mosaic_ckpt::CaptureOptions {
            threads: true,
            ..Default::default()
        },
        &mut image,
        &mut |_, _| {},
    )
    .expect("capture of python3");
    assert_eq!(stats.threads, 2);
    tracee.kill().expect("the captured python3 ends");
    let _ = py.wait();
    (pid, reader, image)
}

/// How home answers.
#[derive(Clone, Copy, PartialEq)]
enum Home {
    /// Every call at once.
    AtOnce,
    /// The reader's `read` only after the main thread's "tick" arrived:
    /// both calls are in flight together.
    ReadAfterTick,
    /// Asks for the guest back while the reader's `read` waits at home,
    /// answers its cancel as interrupted, and takes the guest.
    BackInRead,
}

/// Plays home for the captured python3: sends its image, answers its
/// calls as `how` says; returns every call as (TID, number, bytes in).
fn play_home(mut link: Framed, home_pid: i32, image: Vec<u8>, how: Home) -> Vec<Call> {
    link.send_msg(&HomeMsg::Begin {
        home: "node1".into(),
        home_pid,
        image_len: image.len() as u64,
        locked: false,
    })
    .unwrap();
    let mut out = ImageOut::<HomeMsg>::new(&mut link);
    out.write_all(&image).unwrap();
    out.finish().unwrap();
    let mut calls = Vec::new();
    let mut held_read = None;
    let (read, write) = (abi::nr(libc::SYS_read), abi::nr(libc::SYS_write));
    loop {
        let msg: RemoteMsg = match link.recv_msg() {
            Ok(m) => m,
            Err(_) => return calls,
        };
        match msg {
            RemoteMsg::Started { .. } => {}
            RemoteMsg::Syscall {
                tid,
                nr,
                args,
                inbufs,
            } => {
                let bytes: Vec<u8> = inbufs.iter().flat_map(|(_, b)| b.to_vec()).collect();
                calls.push((tid, nr, bytes.clone()));
                let answer = |ret: i64, out: &[u8]| HomeMsg::SyscallResult {
                    tid,
                    ret,
                    outbufs: if out.is_empty() {
                        Vec::new()
                    } else {
                        vec![(1, out.to_vec().into())]
                    },
                };
                if nr == read && args[0] == 0 {
                    if how == Home::BackInRead {
                        link.send_msg(&HomeMsg::ComeHome).unwrap();
                        continue;
                    }
                    if how == Home::ReadAfterTick {
                        held_read = Some(answer(3, b"hi\n"));
                        continue;
                    }
                    link.send_msg(&answer(3, b"hi\n")).unwrap();
                } else if nr == write {
                    link.send_msg(&answer(abi::count(bytes.len()), b""))
                        .unwrap();
                    if bytes == b"tick"
                        && let Some(r) = held_read.take()
                    {
                        link.send_msg(&r).unwrap();
                    }
                } else if nr == abi::nr(libc::SYS_exit) {
                    // A thread's end: home ends its placeholder thread.
                    link.send_msg(&answer(0, b"")).unwrap();
                } else {
                    panic!("a call home did not expect: {nr} {args:?}");
                }
            }
            RemoteMsg::Cancel { tid } => {
                calls.push((tid, u32::MAX - 1, Vec::new()));
                link.send_msg(&HomeMsg::SyscallResult {
                    tid,
                    ret: -513, // ERESTARTNOINTR: interrupted, made again
                    outbufs: Vec::new(),
                })
                .unwrap();
            }
            RemoteMsg::Returning { .. } => {
                let mut image = Vec::new();
                loop {
                    match link.recv_msg::<RemoteMsg>().unwrap() {
                        RemoteMsg::ImageChunk(b) => image.extend_from_slice(&b),
                        RemoteMsg::ImageEnd => break,
                        other => panic!("{other:?} in the image"),
                    }
                }
                let (_, meta) = mosaic_proto::image::ImageReader::new(&image[..]).unwrap();
                for th in &meta.threads {
                    calls.push((th.tid, u32::MAX - 2, Vec::new()));
                }
                link.send_msg(&HomeMsg::Arrived).unwrap();
            }
            RemoteMsg::Gone { .. } => return calls,
            RemoteMsg::Exited { code, .. } => {
                assert_eq!(code, 0);
                calls.push((0, u32::MAX, Vec::new()));
                return calls;
            }
            other => panic!("home did not expect {other:?}"),
        }
    }
}

/// Runs a session; the calls home saw, with the home PID and reader TID.
fn session(how: Home) -> (Vec<Call>, i32, i32) {
    let (pid, reader, image) = captured();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let home = std::thread::spawn(move || play_home(Framed(theirs), pid, image, how));
    let mut link = Framed(ours);
    // A home that never answers (a remote that serves one call at a time
    // while the other waits) ends the session: the link closes.
    let timeout = link.0.try_clone().unwrap();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = timeout.shutdown(std::net::Shutdown::Both);
    });
    let served = serve(&mut link, &GuestPolicy::default(), &mut |_, _, _, _| {});
    drop(link);
    let calls = home.join().unwrap();
    drop(watchdog);
    served.unwrap_or_else(|e| panic!("the session: {e}; home saw {calls:?}"));
    (calls, pid, reader)
}

#[test]
fn each_threads_calls_come_home_with_its_home_tid() {
    let (calls, pid, reader) = session(Home::AtOnce);
    let (read, write) = (abi::nr(libc::SYS_read), abi::nr(libc::SYS_write));
    assert!(calls.contains(&(reader, read, Vec::new())), "{calls:?}");
    assert!(
        calls.contains(&(reader, write, b"got hi\n".to_vec())),
        "{calls:?}"
    );
    assert!(calls.contains(&(pid, write, b"tick".to_vec())), "{calls:?}");
    assert_eq!(
        calls.last(),
        Some(&(0, u32::MAX, Vec::new())),
        "exited 0: {calls:?}"
    );
}

#[test]
fn a_threads_call_waiting_at_home_does_not_hold_up_another() {
    let (calls, pid, reader) = session(Home::ReadAfterTick);
    let (read, write) = (abi::nr(libc::SYS_read), abi::nr(libc::SYS_write));
    let at = |c: Call| calls.iter().position(|x| *x == c);
    let (r, tick, got) = (
        at((reader, read, Vec::new())),
        at((pid, write, b"tick".to_vec())),
        at((reader, write, b"got hi\n".to_vec())),
    );
    assert!(r.is_some() && tick.is_some() && got.is_some(), "{calls:?}");
    assert!(tick < got, "{calls:?}");
    assert_eq!(
        calls.last(),
        Some(&(0, u32::MAX, Vec::new())),
        "exited 0: {calls:?}"
    );
}

#[test]
fn going_home_with_a_call_at_home_cancels_it_and_takes_every_thread_under_its_home_tid() {
    let (calls, pid, reader) = session(Home::BackInRead);
    let read = abi::nr(libc::SYS_read);
    let (cancel, imaged) = (u32::MAX - 1, u32::MAX - 2);
    let at = |c: Call| calls.iter().position(|x| *x == c);
    let (r, cancelled) = (
        at((reader, read, Vec::new())),
        at((reader, cancel, Vec::new())),
    );
    assert!(
        r.is_some() && r < cancelled,
        "the read, then its cancel: {calls:?}"
    );
    let threads: Vec<i32> = calls
        .iter()
        .filter(|c| c.1 == imaged)
        .map(|c| c.0)
        .collect();
    assert_eq!(threads, [pid, reader], "the image's threads: {calls:?}");
}
