//! The remote's side of a migration session over a scripted link, with a
//! real guest: `cat`, captured where it waits in `read(0)`, is sent by a
//! script that plays home (the deputy's side has its own test in
//! `deputy/tests/session.rs`). What the remote sends, and what becomes of
//! the guest at every end of the session. Needs root (a guest runs as
//! nobody).

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{HomeMsg, ImageOut, Link, LinkError, RemoteMsg, decode, encode};
use mosaic_remote::{GuestPolicy, RemoteError, serve};

/// What the script says next.
enum Step {
    /// Now (the image).
    Now(HomeMsg),
    /// Once the remote has sent a call and waits for its result.
    Answer(HomeMsg),
}

/// A link whose peer is a script playing home; it closes when the script
/// has ended and the remote waits for a call's result. Its descriptor (a pipe) is readable exactly when the script has
/// something to say: the remote polls it beside its guest's listener.
struct Home {
    steps: VecDeque<Step>,
    heard: Arc<Mutex<Vec<RemoteMsg>>>,
    /// A forwarded call waits for its result.
    in_call: bool,
    ready: (std::fs::File, std::fs::File),
    flagged: bool,
    /// The thread of the last call, whose result the script gives.
    caller: i32,
}

impl Home {
    fn new(steps: VecDeque<Step>, heard: Arc<Mutex<Vec<RemoteMsg>>>) -> Home {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut h = Home {
            steps,
            heard,
            in_call: false,
            ready: (r.into(), w.into()),
            flagged: false,
            caller: 0,
        };
        h.flag();
        h
    }

    fn can_say(&self) -> bool {
        // The link closes (the script's end) in a call, where it is seen.
        match self.steps.front() {
            Some(Step::Now(_)) => true,
            Some(Step::Answer(_)) | None => self.in_call,
        }
    }

    /// One byte in the pipe while there is something to say.
    fn flag(&mut self) {
        use std::io::{Read, Write};
        let want = self.can_say();
        if want && !self.flagged {
            self.ready.1.write_all(b"!").unwrap();
        } else if !want && self.flagged {
            self.ready.0.read_exact(&mut [0]).unwrap();
        }
        self.flagged = want;
    }
}

impl Link for Home {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let m: RemoteMsg = decode(frame)?;
        self.in_call = matches!(m, RemoteMsg::Syscall { .. });
        if let RemoteMsg::Syscall { tid, .. } = m {
            self.caller = tid;
        }
        self.heard.lock().unwrap().push(m);
        self.flag();
        Ok(())
    }

    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        let next = self.steps.pop_front();
        self.in_call = false;
        self.flag();
        match next {
            Some(
                Step::Now(HomeMsg::SyscallResult { ret, outbufs, .. })
                | Step::Answer(HomeMsg::SyscallResult { ret, outbufs, .. }),
            ) => Ok(encode(&HomeMsg::SyscallResult {
                tid: self.caller,
                ret,
                outbufs,
            })),
            Some(Step::Now(m) | Step::Answer(m)) => Ok(encode(&m)),
            None => Err(LinkError::Closed),
        }
    }

    fn readable(&mut self, timeout: Duration) -> Result<bool, LinkError> {
        if !self.can_say() {
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
        }
        Ok(self.can_say())
    }

    fn raw_fd(&self) -> Option<i32> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.ready.0))
    }
}

/// A `cat` waiting in `read(0)` of a pipe the test holds, captured into
/// the messages home sends (`Begin`, the image's chunks, `ImageEnd`); the
/// captured process is killed (a migration would keep it as the
/// placeholder).
fn cat_image() -> Vec<HomeMsg> {
    let mut cat: Child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("cat");
    let pid = mosaic_proto::abi::pid(cat.id());
    let t = Instant::now();
    // Asleep (S) in its read, not still starting.
    while !std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("pipe")) {
        assert!(t.elapsed() < Duration::from_secs(10), "cat never read");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut sent = Recorder(Vec::new());
    let mut image = Vec::new();
    let (tracee, _) = mosaic_ckpt::capture(
        pid,
        &mosaic_ckpt::CaptureOptions::default(),
        &mut image,
        &mut |_, _| {},
    )
    .expect("capture of cat");
    drop(tracee);
    let _ = cat.kill();
    let _ = cat.wait();
    let begin = HomeMsg::Begin {
        home: "node1".into(),
        home_pid: pid,
        image_len: u64::try_from(image.len()).unwrap(),
        locked: false,
    };
    let mut out = ImageOut::<HomeMsg>::new(&mut sent);
    std::io::Write::write_all(&mut out, &image).unwrap();
    out.finish().unwrap();
    std::iter::once(begin).chain(sent.0).collect()
}

/// Records what is sent through it.
struct Recorder(Vec<HomeMsg>);

impl Link for Recorder {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.0.push(decode(frame)?);
        Ok(())
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        Err(LinkError::Closed)
    }
}

/// Serves the image and then `answers`; what the remote said and how the
/// session ended, with the guest's PID.
fn session(answers: Vec<HomeMsg>) -> (Vec<RemoteMsg>, Result<(), RemoteError>, i32) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let mut home = Home::new(
        cat_image()
            .into_iter()
            .map(Step::Now)
            .chain(answers.into_iter().map(Step::Answer))
            .collect(),
        heard.clone(),
    );
    let policy = GuestPolicy {
        uid: 65534,
        gid: 65534,
        accept: true,
        mfs: None,
    };
    let mut guest = 0;
    let ended = serve(&mut home, &policy, &mut |_, _, pid, _| guest = pid);
    let said = heard.lock().unwrap().clone();
    (said, ended, guest)
}

fn result(ret: i64, outbufs: Vec<(u8, &[u8])>) -> HomeMsg {
    HomeMsg::SyscallResult {
        tid: 0, // the caller's, filled in by Home
        ret,
        outbufs: outbufs
            .into_iter()
            .map(|(i, b)| (i, b.to_vec().into()))
            .collect(),
    }
}

/// The calls the remote forwarded, as (number, what went in).
fn calls(said: &[RemoteMsg]) -> Vec<(u32, Vec<u8>)> {
    said.iter()
        .filter_map(|m| match m {
            RemoteMsg::Syscall { nr, inbufs, .. } => {
                Some((*nr, inbufs.iter().flat_map(|(_, b)| b.to_vec()).collect()))
            }
            _ => None,
        })
        .collect()
}

/// Whether the guest (the stub the remote forked in this process, so our
/// child) is gone: it exited (`Some(code)`) or was killed (`None`; or
/// already reaped by the remote right after its kill).
fn end_of(pid: i32) -> Option<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let t = Instant::now();
    loop {
        match waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)) => return None,
            Err(nix::errno::Errno::ECHILD) => return None,
            Ok(WaitStatus::StillAlive) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("guest {pid}: {other:?}"),
        }
    }
}

#[test]
fn a_guest_reads_and_writes_through_home_and_its_exit_ends_the_session() {
    let (said, ended, guest) = session(vec![
        result(3, vec![(1, b"hi\n")]), // read(0) at home
        result(3, vec![]),             // write(1, "hi\n") at home
        result(0, vec![]),             // read(0): end of file
        result(0, vec![]),             // close(0)
        result(0, vec![]),             // close(1)
        result(0, vec![]),             // close(2)
    ]);
    ended.expect("the session ends well");
    assert!(
        matches!(said.first(), Some(RemoteMsg::Started { guest_pid }) if *guest_pid == guest),
        "{said:?}"
    );
    let nr = mosaic_proto::abi::nr;
    let (read, write, close) = (nr(libc::SYS_read), nr(libc::SYS_write), nr(libc::SYS_close));
    assert_eq!(
        calls(&said),
        [
            (read, vec![]),
            (write, b"hi\n".to_vec()),
            (read, vec![]),
            (close, vec![]),
            (close, vec![]),
            (close, vec![]),
        ],
        "{said:?}"
    );
    assert!(
        matches!(
            said.last(),
            Some(RemoteMsg::Exited {
                code: 0,
                cpu: CpuTime { .. }
            })
        ),
        "{said:?}"
    );
    assert_eq!(end_of(guest), None, "reaped by the remote");
}

#[test]
fn an_unexpected_message_in_a_call_ends_the_guest_and_the_session() {
    // Arrived belongs to the end of a trip home, not to a call.
    let (said, ended, guest) = session(vec![HomeMsg::Arrived]);
    let e = ended.expect_err("an unexpected message is a protocol error");
    assert!(e.to_string().contains("Arrived"), "{e}");
    assert_eq!(calls(&said).len(), 1, "{said:?}");
    // Killed: left alone (the remote's kill removed), it was still
    // blocked in its call 10 s after the session had ended.
    assert_eq!(end_of(guest), None, "the guest was not killed");
}

#[test]
fn a_link_lost_in_a_call_ends_the_guest() {
    let (said, ended, guest) = session(vec![]);
    assert!(ended.is_err());
    assert_eq!(calls(&said).len(), 1, "{said:?}");
    assert_eq!(end_of(guest), None, "the guest was not killed");
}

#[test]
fn a_refusing_node_says_failed_and_starts_nothing() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let mut home = Home::new(
        cat_image().into_iter().map(Step::Now).collect(),
        heard.clone(),
    );
    let policy = GuestPolicy {
        uid: 65534,
        gid: 65534,
        accept: false,
        mfs: None,
    };
    let mut started = false;
    let ended = serve(&mut home, &policy, &mut |_, _, _, _| started = true);
    assert!(ended.is_err());
    assert!(!started);
    let said = heard.lock().unwrap().clone();
    assert!(
        matches!(said.as_slice(), [RemoteMsg::Failed { error }] if error.contains("accepts no guests")),
        "{said:?}"
    );
}
