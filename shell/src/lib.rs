//! # mosaic-shell: `mosh`, the interactive shell of the single-system image
//!
//! `mosh` is a bash-compatible shell whose jobs are managed by mosaic:
//! background jobs go where the cluster has room, job control behaves as
//! in bash, and cluster builtins (`nodes`, `mps`, `migrate`, `home`,
//! `lock`, `unlock`, `runon`) are one word away.
//!
//! The language is not ours: the interpreter is brush (`brush-core`, with
//! bash's builtins from `brush-builtins` and its reedline front end from
//! `brush-interactive`). What mosh adds:
//! * [`session`]: the daemon of the node mosh runs on, and what mosh knows
//!   of its children;
//! * [`watch`]: a thread that finds every process the shell starts and has
//!   mosaic manage it (a foreground job is locked home, a background one
//!   is the balancer's to move) and notes when one moves;
//! * [`builtins`]: the cluster builtins;
//! * [`start`]: the first run, which brings up a local cluster when there is
//!   no node to run on.

pub mod builtins;
pub mod session;
pub mod start;
pub mod watch;
