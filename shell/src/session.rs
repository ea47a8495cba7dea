//! The node mosh runs on, and what mosh knows of the processes it started.
//!
//! Builtins are plain functions to the interpreter (they capture nothing),
//! so the session is one global, set once at start.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mosaic_client::{Client, ClientError};

/// A child of the shell, as the watcher last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Its process group (a job's, in an interactive shell).
    pub pgrp: i32,
    /// Locked home: a foreground job, or `lock`ed by the user.
    pub locked: bool,
    /// The node it ran on at the last look (`None`: not looked yet).
    pub node: Option<String>,
    /// Its command line.
    pub cmd: String,
}

/// Something to tell the user about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub pid: i32,
    pub pgrp: i32,
    /// "moved to node2", "came home", ...
    pub what: String,
}

/// The node's daemon and the shell's children.
pub struct Session {
    /// This node's name.
    pub node: String,
    /// Its daemon's control socket.
    pub socket: PathBuf,
    children: Mutex<HashMap<i32, Child>>,
    user_locked: Mutex<HashSet<i32>>,
    notes: Mutex<Vec<Note>>,
    /// Prints a line above the line being edited (the line editor's
    /// external printer), once the interactive shell has one.
    printer: Mutex<Option<reedline::ExternalPrinter<String>>>,
    /// The jobs' names (`[1]+`) by process group, as at the last prompt.
    job_names: Mutex<HashMap<i32, String>>,
}

static SESSION: OnceLock<Session> = OnceLock::new();

/// The session, if mosh runs on a mosaic node.
pub fn get() -> Option<&'static Session> {
    SESSION.get()
}

/// The `mosaic` command: beside `mosh`, else the one on the PATH.
pub fn mosaic_command() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("mosaic")))
        .filter(|m| m.exists())
        .unwrap_or_else(|| PathBuf::from("mosaic"))
}

/// Sets the session (once; later calls keep the first).
pub fn init(session: Session) -> &'static Session {
    SESSION.get_or_init(|| session)
}

/// Locks a mutex, also after a panic elsewhere (the data stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// Connects to the daemon at `socket` and asks its node's name.
    pub fn connect(socket: PathBuf) -> Result<Session, String> {
        let mut session = Session {
            node: String::new(),
            socket,
            children: Default::default(),
            user_locked: Default::default(),
            notes: Default::default(),
            printer: Default::default(),
            job_names: Default::default(),
        };
        session.node = session
            .with_client(Duration::from_secs(10), |c| c.status())?
            .name;
        Ok(session)
    }

    /// One exchange with the daemon through the typed client, waiting up
    /// to `timeout` for each answer; a refusal is an `Err` with the
    /// daemon's message.
    pub fn with_client<T>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, String> {
        let mut client = Client::connect(&self.socket).map_err(|e| e.to_string())?;
        client.set_timeout(timeout).map_err(|e| e.to_string())?;
        f(&mut client).map_err(|e| e.to_string())
    }

    /// The children the watcher knows, by PID.
    pub fn children(&self) -> HashMap<i32, Child> {
        lock(&self.children).clone()
    }

    /// Updates the children under the lock.
    pub fn with_children<R>(&self, f: impl FnOnce(&mut HashMap<i32, Child>) -> R) -> R {
        f(&mut lock(&self.children))
    }

    /// Whether the user locked `pid` (`lock`).
    pub fn user_locked(&self, pid: i32) -> bool {
        lock(&self.user_locked).contains(&pid)
    }

    /// Records a `lock` or `unlock` by the user.
    pub fn set_user_lock(&self, pid: i32, locked: bool) {
        let mut set = lock(&self.user_locked);
        if locked {
            set.insert(pid);
        } else {
            set.remove(&pid);
        }
    }

    /// Forgets user locks of processes that are gone.
    pub fn retain_user_locks(&self, alive: impl Fn(i32) -> bool) {
        lock(&self.user_locked).retain(|&pid| alive(pid));
    }

    /// Tells a note: at once, above the line being edited, if the shell
    /// is at its prompt (it owns the terminal), has a printer and knew the
    /// job at the last prompt; else at the next prompt. (A note handed to
    /// the line editor while a job runs in the foreground waited for the
    /// next line's start and was printed over the job's last line.)
    pub fn note(&self, note: Note) {
        if let Some(printer) = lock(&self.printer).as_ref()
            && at_prompt()
            && let Some(job) = lock(&self.job_names).get(&note.pgrp)
            && printer
                .sender()
                .try_send(format!("{job} {}", note.what))
                .is_ok()
        {
            return;
        }
        lock(&self.notes).push(note);
    }

    /// From now on notes are printed by `printer` as they come.
    pub fn set_printer(&self, printer: reedline::ExternalPrinter<String>) {
        *lock(&self.printer) = Some(printer);
    }

    /// Takes the lines handed to the printer that the line editor has not
    /// printed (a prompt prints them itself, before the editor starts).
    pub fn take_unprinted(&self) -> Vec<String> {
        let printer = lock(&self.printer);
        let Some(printer) = printer.as_ref() else {
            return Vec::new();
        };
        std::iter::from_fn(|| printer.get_line()).collect()
    }

    /// The jobs' names by process group, as the prompt's job table has them.
    pub fn set_job_names(&self, names: HashMap<i32, String>) {
        *lock(&self.job_names) = names;
    }

    /// Takes the queued notes.
    pub fn take_notes(&self) -> Vec<Note> {
        std::mem::take(&mut lock(&self.notes))
    }
}

/// Whether the shell owns its terminal (it is at its prompt, or runs a
/// builtin), not a job in the foreground.
fn at_prompt() -> bool {
    nix::unistd::tcgetpgrp(std::io::stdin()).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

/// Whether process `pid` of this node, stopped under a tracer, is stopped
/// as its job sees it: a placeholder sits in that state whether its guest
/// runs or is stopped, so the daemon, which knows the guest's state, is
/// asked (brush asks before each prompt and for `fg` and `bg`).
pub fn traced_stopped(pid: i32) -> bool {
    let Some(session) = get() else {
        return false;
    };
    session
        .with_client(Duration::from_secs(2), |c| c.ps())
        .is_ok_and(|procs| {
            procs
                .iter()
                .any(|p| p.home == session.node && p.home_pid == pid && p.state == "stopped")
        })
}
