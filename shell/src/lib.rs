//! # mosaic-shell: `mosh`, the interactive shell of the single-system image
//!
//! `mosh` is a bash-compatible shell (an existing interpreter, never a
//! language of our own) whose jobs are managed by mosaic: background jobs go
//! where the cluster has room, job control behaves as in bash, and cluster
//! builtins (`nodes`, `mps`, `migrate`, `runon`, ...) are one word away.
//!
//! Status: not written yet (issue "mosh: the interactive shell").
