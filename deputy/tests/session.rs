//! The deputy's side of a migration session over a scripted link, with a
//! real process as the placeholder (`sleep`, seized and captured as a
//! migration would): what it sends, and what becomes of the process at
//! every end of the session.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use mosaic_deputy::{DeputyError, Outcome};
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{HomeMsg, Link, LinkError, RemoteMsg, decode, encode};

/// A link whose peer says the scripted messages in order, then closes.
struct Script {
    says: VecDeque<RemoteMsg>,
    heard: Vec<HomeMsg>,
}

impl Script {
    fn new(says: Vec<RemoteMsg>) -> Script {
        Script {
            says: says.into(),
            heard: Vec::new(),
        }
    }
    /// What home sent, without the image.
    fn heard(&self) -> Vec<&HomeMsg> {
        self.heard
            .iter()
            .filter(|m| !matches!(m, HomeMsg::ImageChunk(_)))
            .collect()
    }
}

impl Link for Script {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.heard.push(decode(frame)?);
        Ok(())
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        self.says
            .pop_front()
            .map(|m| encode(&m))
            .ok_or(LinkError::Closed)
    }
}

/// A `sleep` whose parent is a shell that says how it ended (the deputy
/// is its tracer, and a tracer that is also the parent would take its
/// status away from the test).
struct Sleeper {
    shell: Child,
    out: BufReader<std::process::ChildStdout>,
    pid: i32,
}

impl Sleeper {
    fn new() -> Sleeper {
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait $!; echo status=$?"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut out = BufReader::new(shell.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        Sleeper {
            shell,
            out,
            pid: line.trim().parse().unwrap(),
        }
    }

    /// What its parent saw: `status=N`.
    fn ended(mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        self.shell.wait().unwrap();
        line.trim().to_string()
    }

    fn tracer(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:").map(|v| v.trim().to_string()))
            .unwrap()
    }
}

fn started() -> RemoteMsg {
    RemoteMsg::Started { guest_pid: 4242 }
}

/// Sends `s` over `link` and serves it.
fn migrate_and_serve(s: &Sleeper, link: &mut Script) -> Result<Outcome<()>, DeputyError> {
    let p = mosaic_deputy::migrate::<()>(s.pid, "node1", link, &Default::default(), false)?;
    let (_commands, incoming) = std::sync::mpsc::channel();
    p.serve(link, &incoming)
}

#[test]
fn a_refused_migration_leaves_the_process_running_untraced() {
    for answer in [
        RemoteMsg::Failed {
            error: "no room".into(),
        },
        RemoteMsg::FilesMissing {
            error: "no /bin/sleep".into(),
        },
        // Not legal at the start: refused the same way.
        RemoteMsg::Gone { signals: vec![] },
    ] {
        let sleeper = Sleeper::new();
        let mut link = Script::new(vec![answer.clone()]);
        let r = migrate_and_serve(&sleeper, &mut link);
        assert!(r.is_err(), "{answer:?}: {r:?}");
        assert!(matches!(link.heard()[0], HomeMsg::Begin { .. }));
        assert_eq!(link.heard().last(), Some(&&HomeMsg::ImageEnd));
        // It goes on at home as if nothing happened.
        assert_eq!(sleeper.tracer(), "0", "{answer:?}");
        // SAFETY: kill takes two integers.
        unsafe { libc::kill(sleeper.pid, libc::SIGTERM) };
        assert_eq!(sleeper.ended(), "status=143", "{answer:?}");
    }
}

#[test]
fn a_call_is_made_in_the_placeholder_and_the_exit_status_is_the_guests() {
    let sleeper = Sleeper::new();
    let mut link = Script::new(vec![
        started(),
        // getpid: made in the placeholder, so the home PID.
        RemoteMsg::Syscall {
            nr: libc::SYS_getpid as u32,
            args: [0; 6],
            inbufs: Vec::new(),
        },
        RemoteMsg::Exited {
            code: 3,
            cpu: CpuTime::default(),
        },
    ]);
    let outcome = migrate_and_serve(&sleeper, &mut link).unwrap();
    assert!(matches!(outcome, Outcome::Exited(3)), "{outcome:?}");
    assert!(
        link.heard().contains(&&HomeMsg::SyscallResult {
            ret: i64::from(sleeper.pid),
            outbufs: Vec::new()
        }),
        "{:?}",
        link.heard()
    );
    assert_eq!(sleeper.ended(), "status=3");
}

#[test]
fn an_unexpected_message_or_a_lost_link_ends_the_process_by_sigkill() {
    for script in [
        // Gone is legal only after home said Arrived.
        vec![started(), RemoteMsg::Gone { signals: vec![] }],
        // A second Started.
        vec![started(), started()],
        // The link closes while the guest runs.
        vec![started()],
    ] {
        let sleeper = Sleeper::new();
        let mut link = Script::new(script.clone());
        match migrate_and_serve(&sleeper, &mut link) {
            Err(DeputyError::Unexpected(e)) => {
                assert_eq!(e.state, mosaic_proto::session::State::Serving, "{e}");
            }
            Err(DeputyError::GuestLost(_)) => assert_eq!(script.len(), 1),
            other => panic!("{script:?}: {other:?}"),
        }
        // Its parent sees it end, not left running with its memory gone.
        assert_eq!(sleeper.ended(), "status=137", "{script:?}");
    }
}
