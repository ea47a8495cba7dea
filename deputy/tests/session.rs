//! The deputy's side of a migration session over a scripted link, with a
//! real process as the placeholder (`sleep`, seized and captured as a
//! migration would): what it sends, and what becomes of the process at
//! every end of the session.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use mosaic_deputy::journey::{Nodes, journey};
use mosaic_deputy::{DeputyError, Outcome};
use mosaic_proto::abi;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{HomeMsg, Link, LinkError, RemoteMsg, decode, encode};

/// What a scripted peer does next.
#[derive(Clone, Debug)]
enum Step {
    Say(RemoteMsg),
    /// Sends back the image home sent, as the guest coming home.
    EchoImage,
}

/// What home sent on one link.
type Heard = Arc<Mutex<Vec<HomeMsg>>>;

/// A link whose peer takes the scripted steps in order, then closes.
struct Script {
    steps: VecDeque<Step>,
    heard: Heard,
}

impl Script {
    fn new(says: Vec<RemoteMsg>) -> Script {
        Script::steps(says.into_iter().map(Step::Say).collect())
    }
    fn steps(steps: Vec<Step>) -> Script {
        Script {
            steps: steps.into(),
            heard: Default::default(),
        }
    }
    /// What home sent, without the image.
    fn heard(&self) -> Vec<HomeMsg> {
        heard(&self.heard)
    }
}

fn heard(h: &Mutex<Vec<HomeMsg>>) -> Vec<HomeMsg> {
    h.lock()
        .unwrap()
        .iter()
        .filter(|m| !matches!(m, HomeMsg::ImageChunk(_)))
        .cloned()
        .collect()
}

/// The bytes of the image home sent.
fn image_bytes(h: &Mutex<Vec<HomeMsg>>) -> usize {
    h.lock()
        .unwrap()
        .iter()
        .map(|m| match m {
            HomeMsg::ImageChunk(b) => b.len(),
            _ => 0,
        })
        .sum()
}

impl Link for Script {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.heard.lock().unwrap().push(decode(frame)?);
        Ok(())
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        match self.steps.pop_front() {
            Some(Step::Say(m)) => Ok(encode(&m)),
            Some(Step::EchoImage) => {
                let chunks: Vec<Step> = self
                    .heard
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|m| match m {
                        HomeMsg::ImageChunk(b) => Some(Step::Say(RemoteMsg::ImageChunk(b.clone()))),
                        _ => None,
                    })
                    .chain([Step::Say(RemoteMsg::ImageEnd)])
                    .collect();
                for c in chunks.into_iter().rev() {
                    self.steps.push_front(c);
                }
                self.recv_bytes()
            }
            None => Err(LinkError::Closed),
        }
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
        assert_eq!(link.heard().last(), Some(&HomeMsg::ImageEnd));
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
        // getppid: made in the placeholder, so its parent at home (the shell).
        RemoteMsg::Syscall {
            tid: sleeper.pid,
            nr: abi::nr(libc::SYS_getppid),
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
        link.heard().contains(&HomeMsg::SyscallResult {
            tid: sleeper.pid,
            ret: i64::from(sleeper.shell.id()),
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

/// A cluster as a journey sees it: every `connect` takes the next script.
#[derive(Clone, Default)]
struct Fake {
    scripts: Arc<Mutex<VecDeque<Vec<Step>>>>,
    /// What home sent on each link, in order.
    links: Arc<Mutex<Vec<Heard>>>,
    /// What the journey told the node.
    told: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn new(scripts: Vec<Vec<Step>>) -> Fake {
        Fake {
            scripts: Arc::new(Mutex::new(scripts.into())),
            ..Default::default()
        }
    }
    fn tell(&self, what: String) {
        self.told.lock().unwrap().push(what);
    }
}

impl Nodes for Fake {
    type Target = String;
    fn me(&self) -> &str {
        "node1"
    }
    fn name(&self, target: &String) -> String {
        target.clone()
    }
    fn connect(&self, target: &String) -> Result<Box<dyn Link>, String> {
        let steps = self
            .scripts
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(format!("cannot reach {target}"))?;
        let link = Script::steps(steps);
        self.links.lock().unwrap().push(link.heard.clone());
        self.tell(format!("connect {target}"));
        Ok(Box::new(link))
    }
    fn resolve(&self, node: &str) -> Result<String, String> {
        Ok(node.to_string())
    }
    fn capture_options(&self, _pid: i32) -> mosaic_ckpt::CaptureOptions {
        Default::default()
    }
    fn locked(&self, _pid: i32) -> bool {
        false
    }
    fn away(
        &self,
        _pid: i32,
        _cmd: &str,
        node: &str,
        guest_pid: i32,
        _commands: std::sync::mpsc::Sender<mosaic_deputy::Command<String>>,
        _stopped: Arc<std::sync::atomic::AtomicBool>,
    ) {
        self.tell(format!("away on {node} as {guest_pid}"));
    }
    fn not_away(&self, _pid: i32) {
        self.tell("not away".into());
    }
    fn came_home(&self, _pid: i32, _cpu: CpuTime) {
        self.tell("came home".into());
    }
    fn ended_away(&self, _pid: i32, _cpu: CpuTime) {
        self.tell("ended away".into());
    }
}

fn exited(code: i32) -> Step {
    Step::Say(RemoteMsg::Exited {
        code,
        cpu: CpuTime::default(),
    })
}

#[test]
fn a_journey_sends_the_files_pages_to_a_node_that_misses_the_files() {
    let sleeper = Sleeper::new();
    let nodes = Fake::new(vec![
        vec![Step::Say(RemoteMsg::FilesMissing {
            error: "no /usr/bin/sleep here".into(),
        })],
        vec![Step::Say(started()), exited(0)],
    ]);
    let (reply, answer) = std::sync::mpsc::channel();
    journey(sleeper.pid, "node2".to_string(), reply, &nodes);
    assert_eq!(answer.recv().unwrap(), Ok((Some("node2".into()), 4242)));
    let links = nodes.links.lock().unwrap().clone();
    assert_eq!(links.len(), 2);
    // The second image carries the pages of sleep and its libraries.
    let (first, second) = (image_bytes(&links[0]), image_bytes(&links[1]));
    assert!(second > first + 100_000, "{first} then {second} bytes");
    assert_eq!(sleeper.ended(), "status=0");
    assert_eq!(
        *nodes.told.lock().unwrap(),
        [
            "connect node2",
            "connect node2",
            "away on node2 as 4242",
            "ended away",
            "not away"
        ]
    );
}

#[test]
fn a_journey_comes_home_then_goes_where_its_host_said() {
    let sleeper = Sleeper::new();
    let nodes = Fake::new(vec![
        vec![
            Step::Say(started()),
            Step::Say(RemoteMsg::Returning {
                reason: "moved on by its host".into(),
                next: Some("node3".into()),
            }),
            // The guest as it left (its image, sent back).
            Step::EchoImage,
            Step::Say(RemoteMsg::Gone {
                signals: Vec::new(),
            }),
        ],
        vec![Step::Say(started()), exited(5)],
    ]);
    let (reply, answer) = std::sync::mpsc::channel();
    journey(sleeper.pid, "node2".to_string(), reply, &nodes);
    assert_eq!(answer.recv().unwrap(), Ok((Some("node2".into()), 4242)));
    let links = nodes.links.lock().unwrap().clone();
    assert!(
        heard(&links[0]).contains(&HomeMsg::Arrived),
        "{:?}",
        heard(&links[0])
    );
    // Restored at home from the image that came back, then captured again.
    assert!(image_bytes(&links[1]) > 0);
    assert_eq!(sleeper.ended(), "status=5");
    assert_eq!(
        *nodes.told.lock().unwrap(),
        [
            "connect node2",
            "away on node2 as 4242",
            "not away",
            "came home",
            "connect node3",
            "away on node3 as 4242",
            "ended away",
            "not away"
        ]
    );
}
