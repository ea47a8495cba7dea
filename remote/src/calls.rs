//! Its calls: made here, forwarded home with the codec's marshalling, or
//! a reason to go home first (`Route`).

use crate::RemoteError;
use crate::clocks::{cpu_clock, own_cpu_time};
use crate::fill::{map_private_file, private_file_map};
use crate::home::go_home;
use crate::not_handled;
use crate::procview::open_own_proc_file;
use crate::session::{Guest, Notif};
use crate::signals::deliverable_signal;
use mosaic_ckpt::ptrace::Memory;
use mosaic_proto::abi;
use mosaic_proto::migrate::{Buf, HomeMsg, Link, LinkExt, PIECE, RemoteMsg, join_parts};
use mosaic_proto::session::{State, home_name};
use mosaic_proto::syscalls::codec::errno::{
    EFAULT, ENOSYS, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS,
};
use mosaic_proto::syscalls::codec::{self, AtHome, Fault, Marshal, ScatterError};
use mosaic_proto::syscalls::{Class, lookup};
use tracing::warn;

/// What becomes of a call the guest's filter sent us.
pub(crate) enum Route {
    /// Forwarded home and answered, marshalled so.
    Forward(Marshal),
    /// Made at home, natively: the guest goes home first.
    Home(&'static str),
    /// A private (or read-only shared) file mapping, filled from home.
    FillMapping,
    /// `clock_gettime` of a CPU-time clock.
    CpuClock,
    /// `sendmmsg`/`recvmmsg`: one `sendmsg`/`recvmsg` forwarded per message.
    Mmsg,
    /// A thread born here: its placeholder thread is made at home first
    /// (`crate::threads`).
    Thread,
    /// A thread's end (`exit`): its placeholder thread ends at home first.
    ThreadEnd,
    /// Made by the guest's kernel as asked (the last thread's `exit`).
    LetThrough,
    /// No row says how (the filter lets only these through).
    Refuse(&'static str),
}

pub(crate) fn route(n: &Notif) -> Route {
    let Some(row) = u32::try_from(n.data.nr).ok().and_then(lookup) else {
        return Route::Refuse("not a system call of this kernel");
    };
    match row.class {
        Class::BringHome => Route::Home(row.name),
        // recvmmsg's timeout is checked between messages: made at home.
        Class::Forward if i64::from(n.data.nr) == libc::SYS_recvmmsg && n.data.args[4] != 0 => {
            Route::Home("recvmmsg with a timeout")
        }
        Class::Forward
            if matches!(
                i64::from(n.data.nr),
                libc::SYS_sendmmsg | libc::SYS_recvmmsg
            ) =>
        {
            Route::Mmsg
        }
        Class::Forward => match codec::resolve(row, &n.data.args) {
            Ok(m) => Route::Forward(m),
            Err(AtHome(why)) => Route::Home(why),
        },
        Class::Local if i64::from(n.data.nr) == libc::SYS_clock_gettime => Route::CpuClock,
        Class::Local if i64::from(n.data.nr) == libc::SYS_mmap => {
            if private_file_map(n) {
                Route::FillMapping
            } else {
                Route::Home("mmap of shared memory (or of a very large file)")
            }
        }
        Class::Exit if i64::from(n.data.nr) == libc::SYS_exit => Route::ThreadEnd,
        Class::Local | Class::Exit | Class::Unsupported => Route::Refuse(row.name),
    }
}

/// One call of the guest. Returns true if the guest went home.
pub(crate) fn call(g: &Guest, link: &mut dyn Link, n: Notif) -> Result<bool, RemoteError> {
    let nr = abi::nr(i64::from(n.data.nr));
    g.calling.set(g.home_tid(n.pid));
    if let Some(ret) = open_own_proc_file(g, link, &n)? {
        g.answer(n.id, ret);
        return Ok(false);
    }
    let routed = match i64::from(n.data.nr) {
        libc::SYS_clone | libc::SYS_clone3 => crate::threads::route_clone(g, &n),
        libc::SYS_exit => crate::threads::route_exit(g, &n),
        _ => route(&n),
    };
    let marshal = match routed {
        Route::Forward(m) => m,
        Route::Thread | Route::ThreadEnd => Marshal::bare(),
        Route::LetThrough => {
            g.let_through(n.id);
            return Ok(false);
        }
        Route::Home(reason) => return go_home(g, link, Some((n.id, n.pid)), reason, None),
        Route::FillMapping => {
            map_private_file(g, link, &n)?;
            return Ok(false);
        }
        Route::CpuClock => {
            cpu_clock(g, link, &n)?;
            return Ok(false);
        }
        Route::Mmsg => {
            let ret = mmsg(g, link, &n)?;
            g.answer(n.id, ret);
            return Ok(false);
        }
        Route::Refuse(why) => {
            // Not a call the guest's filter sends us: said, and ENOSYS.
            g.warn(|held| {
                warn!(
                    nr,
                    why, held, "a guest call with no way to run; answered ENOSYS"
                )
            });
            g.answer(n.id, ENOSYS);
            return Ok(false);
        }
    };
    // Answered when its result comes (`finish`): another thread's calls
    // go on meanwhile.
    send(g, link, &n, &marshal)
}

/// A thread's call forwarded home, waiting for its result.
pub(crate) struct InFlight {
    /// The notification it answers (its `pid`: the thread, here).
    n: Notif,
    marshal: Marshal,
    gathered: codec::Gathered,
    /// Its result's pieces so far ([`part`]).
    pieces: Pieces,
}

/// The pieces of a large result ([`HomeMsg::SyscallPart`]) as they come:
/// written into the guest at once where an argument allows (so the
/// serving loop never copies a whole 8 MiB answer in one go, which held
/// up other threads' calls for 12 ms), kept and joined where it does not.
#[derive(Default)]
pub(crate) struct Pieces {
    /// Bytes of each streaming argument written so far.
    written: Vec<(u8, u64)>,
    /// The other arguments' pieces, joined (written with the result).
    kept: Vec<Buf>,
    /// Every byte come so far (bounded by what a call can carry).
    total: u64,
    /// A piece could not be written: the call answers EFAULT.
    failed: Option<ScatterError>,
    /// Pieces came.
    any: bool,
}

impl Pieces {
    /// Takes the next piece of the call gathered as `gathered`.
    fn take(
        &mut self,
        g: &Guest,
        gathered: &codec::Gathered,
        outbufs: Vec<Buf>,
    ) -> Result<(), RemoteError> {
        let adds: u64 = outbufs.iter().map(|(_, b)| b.len() as u64).sum();
        self.total = self.total.saturating_add(adds);
        if self.total > codec::MAX_CALL {
            return Err(RemoteError::Protocol(format!(
                "a result's pieces exceed {} bytes",
                codec::MAX_CALL
            )));
        }
        self.any = true;
        for (arg, bytes) in outbufs {
            if !gathered.streams(arg) {
                join_parts(&mut self.kept, vec![(arg, bytes)], codec::MAX_CALL)?;
                continue;
            }
            let at = self
                .written
                .iter()
                .find(|(a, _)| *a == arg)
                .map_or(0, |(_, n)| *n);
            if self.failed.is_none()
                && let Err(e) = gathered.scatter_at(&GuestMem(&g.mem), arg, at, &bytes)
            {
                self.failed = Some(e);
            }
            self.written.retain(|(a, _)| *a != arg);
            self.written.push((arg, at + bytes.len() as u64));
        }
        Ok(())
    }
}

/// Sends the call of notification `n` home without waiting for it
/// (`finish` answers it). Returns false (the guest did not go home).
/// A threaded guest's call with large in-buffers goes in pieces
/// ([`Outgoing`]), its `Syscall` last.
pub(crate) fn send(
    g: &Guest,
    link: &mut dyn Link,
    n: &Notif,
    marshal: &Marshal,
) -> Result<bool, RemoteError> {
    let nr = abi::nr(i64::from(n.data.nr));
    let tid = g.home_tid(n.pid);
    // Home's router joins pieces; a guest without threads has nobody
    // else to serve meanwhile, and home no router.
    let over = if g.threaded.get() {
        PIECE as u64
    } else {
        u64::MAX
    };
    let mut gathered = match gather(g, n.data.args, marshal, over) {
        Ok(gathered) => gathered,
        Err(errno) => {
            g.answer(n.id, errno);
            return Ok(false);
        }
    };
    let o = Outgoing {
        n: *n,
        tid,
        marshal: marshal.clone(),
        sent_any: false,
    };
    if gathered.has_deferred() {
        g.outgoing.borrow_mut().push_back((o, gathered));
        return Ok(false);
    }
    send_call(g, link, tid, nr, n.data.args, &mut gathered)?;
    o.in_flight(g, gathered);
    Ok(false)
}

/// A thread's call whose in-buffers are large, being sent home: a piece
/// ([`PIECE`]) per turn of the serving loop ([`advance`]), read from the
/// guest as it goes, its `Syscall` last. Between pieces other threads'
/// calls are sent and their results taken (whole, an 8 MiB write was read
/// and sent in 14 ms in which nothing else was served).
pub(crate) struct Outgoing {
    n: Notif,
    tid: i32,
    marshal: Marshal,
    /// A piece went home (a call given up must then be withdrawn).
    sent_any: bool,
}

impl Outgoing {
    /// Sent whole: waits for its result.
    fn in_flight(self, g: &Guest, gathered: codec::Gathered) {
        g.in_flight.borrow_mut().insert(
            self.tid,
            InFlight {
                n: self.n,
                marshal: self.marshal,
                gathered,
                pieces: Pieces::default(),
            },
        );
    }
}

/// Sends the next piece of the first call being sent in pieces, and the
/// call itself after its last piece (calls so sent take turns in the
/// order they came: home holds the pieces of one at a time). A piece the
/// guest's memory refuses fails the call with EFAULT, as a whole gather
/// would, and withdraws what home has of it.
pub(crate) fn advance(g: &Guest, link: &mut dyn Link) -> Result<(), RemoteError> {
    if let Some(asked) = g.stop_asked.get() {
        let pid = g.pid.as_raw();
        let stopping = crate::signals::stopping(pid);
        if stopping && !g.outgoing.borrow().is_empty() {
            // Under way: every thread has the stop pending, so each
            // answered thread takes its restart (made again once
            // continued) and stops.
            for (n, _) in give_up_outgoing(g, link)? {
                g.answer(n.id, ERESTARTNOINTR);
            }
            return Ok(());
        }
        // The note stays for calls queued before the stop is whole, unless
        // a handler took the signal, or it was discarded: no stop comes.
        if !stopping && asked.elapsed() >= STOP_SETTLES && !crate::signals::stop_queued(pid) {
            g.stop_asked.set(None);
        }
    }
    let Some((mut o, mut gathered)) = g.outgoing.borrow_mut().pop_front() else {
        return Ok(());
    };
    match gathered.next_piece(&GuestMem(&g.mem), PIECE) {
        Ok(Some(piece)) => {
            link.send_msg(&RemoteMsg::SyscallPart {
                tid: o.tid,
                inbufs: vec![piece],
            })?;
            o.sent_any = true;
        }
        Ok(None) => {}
        Err(errno) => {
            if o.sent_any {
                link.send_msg(&RemoteMsg::Cancel { tid: o.tid })?;
            }
            g.answer(o.n.id, errno);
            return Ok(());
        }
    }
    if gathered.has_deferred() {
        g.outgoing.borrow_mut().push_front((o, gathered));
        return Ok(());
    }
    let nr = abi::nr(i64::from(o.n.data.nr));
    send_call(g, link, o.tid, nr, o.n.data.args, &mut gathered)?;
    if g.stop_asked.get().is_some() {
        // Sent after the stop's cancels: cancelled now, or it could block
        // at home (a pipe whose reader stopped too) and hold the stop.
        link.send_msg(&RemoteMsg::Cancel { tid: o.tid })?;
    }
    o.in_flight(g, gathered);
    Ok(())
}

/// How long after a stop signal was sent a stop that has not begun is
/// taken to be none (a handler took the signal): far longer than a
/// thread takes to stop once it took the signal.
const STOP_SETTLES: std::time::Duration = std::time::Duration::from_millis(50);

/// Gives up the calls not yet wholly sent home (the guest is to be
/// stopped or captured: a thread waiting for its answer cannot stop).
/// Home drops the pieces it has of them; nothing of them ran. Returns
/// their notifications, to be answered as interrupted (the call is made
/// again once the thread goes on, here or at home), and marshallings.
pub(crate) fn give_up_outgoing(
    g: &Guest,
    link: &mut dyn Link,
) -> Result<Vec<(Notif, Marshal)>, RemoteError> {
    let outgoing: Vec<_> = g.outgoing.borrow_mut().drain(..).collect();
    let mut given_up = Vec::with_capacity(outgoing.len());
    for (o, _) in outgoing {
        if o.sent_any {
            link.send_msg(&RemoteMsg::Cancel { tid: o.tid })?;
        }
        given_up.push((o.n, o.marshal));
    }
    if !given_up.is_empty() {
        tracing::info!(
            guest_pid = g.pid.as_raw(),
            calls = given_up.len(),
            "calls being sent home in pieces were given up; each is made again"
        );
    }
    Ok(given_up)
}

/// Takes thread `tid`'s call off the calls in flight without answering
/// it; returns its notification.
pub(crate) fn withdraw(g: &Guest, tid: i32) -> Result<Notif, RemoteError> {
    g.calls.borrow_mut().answered(tid)?;
    g.parts.borrow_mut().remove(&tid);
    g.in_flight
        .borrow_mut()
        .remove(&tid)
        .map(|f| f.n)
        .ok_or_else(|| RemoteError::Protocol(format!("no call of thread {tid} waits")))
}

/// A piece of the out-buffers of thread `tid`'s call (its result
/// follows), kept until then, no more than a call's buffers can hold.
pub(crate) fn part(g: &Guest, tid: i32, outbufs: Vec<Buf>) -> Result<(), RemoteError> {
    if !g.calls.borrow().tids().any(|t| t == tid) {
        return Err(RemoteError::Protocol(format!(
            "a piece of a result for thread {tid}, whose call is not waiting for one"
        )));
    }
    if let Some(f) = g.in_flight.borrow_mut().get_mut(&tid) {
        return f.pieces.take(g, &f.gathered, outbufs);
    }
    // The call waited for in `forward` (one at a time): joined.
    let mut parts = g.parts.borrow_mut();
    join_parts(parts.entry(tid).or_default(), outbufs, codec::MAX_CALL)?;
    Ok(())
}

/// The out-buffers of thread `tid`'s result: the pieces sent before it,
/// joined with its own (the last piece).
fn whole(g: &Guest, tid: i32, outbufs: Vec<Buf>) -> Result<Vec<Buf>, RemoteError> {
    match g.parts.borrow_mut().remove(&tid) {
        None => Ok(outbufs),
        Some(mut parts) => {
            join_parts(&mut parts, outbufs, codec::MAX_CALL)?;
            Ok(parts)
        }
    }
}

/// Home's result of thread `tid`'s call: its out-buffers written into the
/// guest's memory, and the call answered; or sent again when home was
/// interrupted and no signal will run here (the kernel would restart it,
/// so do we). With a signal queued, the guest's kernel restarts the call
/// or fails it with EINTR by the guest's own SA_RESTART.
pub(crate) fn finish(
    g: &Guest,
    link: &mut dyn Link,
    tid: i32,
    ret: i64,
    outbufs: Vec<Buf>,
) -> Result<(), RemoteError> {
    g.calls.borrow_mut().answered(tid)?;
    let outbufs = whole(g, tid, outbufs)?;
    let Some(mut f) = g.in_flight.borrow_mut().remove(&tid) else {
        return Err(RemoteError::Protocol(format!(
            "a result for thread {tid}, whose call is not waiting for one"
        )));
    };
    let nr = abi::nr(i64::from(f.n.data.nr));
    if crate::threads::is_thread_call(&f.n) {
        crate::threads::finish(g, &f.n, ret);
        return Ok(());
    }
    let ret = if f.pieces.any {
        f.pieces.take(g, &f.gathered, outbufs)?;
        match f.pieces.failed.take() {
            None => scatter(g, nr, &f.gathered, &f.pieces.kept, ret),
            Some(e) => scattered(g, nr, Err(e), ret),
        }
    } else {
        scatter(g, nr, &f.gathered, &outbufs, ret)
    };
    // Made again here unless a signal will run, or a stop take it first
    // (the kernel restarts the call after it: [`Guest::relay`]).
    if matches!(ret, ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND)
        && !deliverable_signal(abi::pid(f.n.pid))
        && !crate::signals::stopping(g.pid.as_raw())
    {
        send(g, link, &f.n, &f.marshal)?;
        return Ok(());
    }
    if ret >= 0 {
        own_cpu_time(g, nr, &f.n.data.args);
    }
    g.answer(f.n.id, ret);
    Ok(())
}

/// [`forward`], made again when home was interrupted but no signal will
/// run here (the kernel would restart it, so do we).
pub(crate) fn forward_restarting(
    link: &mut dyn Link,
    g: &Guest,
    nr: u32,
    args: [u64; 6],
    marshal: &Marshal,
) -> Result<i64, RemoteError> {
    loop {
        let ret = forward(link, g, nr, args, marshal)?;
        if matches!(ret, ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND)
            && !deliverable_signal(g.pid.as_raw())
        {
            continue;
        }
        return Ok(ret);
    }
}

/// `sendmmsg` and `recvmmsg` (without a timeout) as the kernel makes
/// them: a `sendmsg` or `recvmsg` per message, each forwarded as such, its
/// byte count written into the message's `msg_len`; after the first,
/// `MSG_WAITFORONE` makes the others non-blocking. The number of messages
/// done, or the first one's error.
pub(crate) fn mmsg(g: &Guest, link: &mut dyn Link, n: &Notif) -> Result<i64, RemoteError> {
    // struct mmsghdr: a msghdr, then the msg_len the kernel sets.
    const MMSGHDR_SIZE: u64 = std::mem::size_of::<libc::mmsghdr>() as u64;
    const MSG_LEN_AT: u64 = mosaic_proto::syscalls::msghdr::SIZE as u64;
    const MSG_WAITFORONE: u64 = libc::MSG_WAITFORONE as u64;
    let [fd, vec, vlen, flags, ..] = n.data.args;
    let recv = i64::from(n.data.nr) == libc::SYS_recvmmsg;
    let one = if recv {
        libc::SYS_recvmsg
    } else {
        libc::SYS_sendmsg
    };
    let Some(row) = lookup(abi::nr(one)) else {
        return Ok(ENOSYS);
    };
    // The kernel takes at most UIO_MAXIOV messages a call.
    let vlen = vlen.min(1024);
    let mut done: u64 = 0;
    while done < vlen {
        let hdr = vec.wrapping_add(done * MMSGHDR_SIZE);
        let mut each = flags & !MSG_WAITFORONE;
        if recv && done > 0 && flags & MSG_WAITFORONE != 0 {
            each |= libc::MSG_DONTWAIT as u64;
        }
        let args = [fd, hdr, each, 0, 0, 0];
        let ret = match codec::resolve(row, &args) {
            Ok(m) => forward_restarting(link, g, row.nr, args, &m)?,
            Err(_) => EFAULT,
        };
        if ret < 0 {
            return Ok(if done > 0 {
                i64::try_from(done).unwrap_or(i64::MAX)
            } else {
                ret
            });
        }
        let len = u32::try_from(ret).unwrap_or(u32::MAX).to_le_bytes();
        if g.mem.write_mem(hdr + MSG_LEN_AT, &len).is_err() {
            return Ok(if done > 0 {
                i64::try_from(done).unwrap_or(i64::MAX)
            } else {
                EFAULT
            });
        }
        done += 1;
    }
    Ok(i64::try_from(done).unwrap_or(i64::MAX))
}

/// The result of the call just sent home; signals home sends meanwhile are
/// delivered on the way (before the result: an interrupted call must find
/// its signal queued).
pub(crate) fn result_of(link: &mut dyn Link, g: &Guest) -> Result<(i64, Vec<Buf>), RemoteError> {
    let me = g.calling.get();
    loop {
        // Calls being sent in pieces go on meanwhile (the call waited for
        // may wait for one of them: a read of the socket another thread
        // writes).
        while !g.outgoing.borrow().is_empty() && !link.readable(std::time::Duration::ZERO)? {
            advance(g, link)?;
        }
        match crate::receive(link, State::InCall)? {
            HomeMsg::SyscallResult { tid, ret, outbufs } if tid == me => {
                g.calls.borrow_mut().answered(tid)?;
                return Ok((ret, whole(g, tid, outbufs)?));
            }
            // Another thread's, sent before.
            HomeMsg::SyscallResult { tid, ret, outbufs } => finish(g, link, tid, ret, outbufs)?,
            HomeMsg::SyscallPart { tid, outbufs } => part(g, tid, outbufs)?,
            HomeMsg::Signal { signal } => {
                g.note_stop(signal);
                g.signal(signal);
            }
            HomeMsg::ThreadSignal { tid, signal } => {
                g.note_stop(signal);
                g.signal_thread(tid, signal);
            }
            // Served once the call is done.
            HomeMsg::ComeHome => g.asked.set(true),
            other => return Err(not_handled(home_name(&other))),
        }
    }
}

/// The guest's memory as the codec reaches it.
pub(crate) struct GuestMem<'a>(&'a dyn Memory);

impl codec::GuestMemory for GuestMem<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.0.read_mem(addr, buf).map_err(|_| Fault)
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.0.write_mem(addr, data).map_err(|_| Fault)
    }
}

/// Forwards the call the guest waits in (`marshal`, resolved by
/// [`call`]); returns its result.
pub(crate) fn forward(
    link: &mut dyn Link,
    g: &Guest,
    nr: u32,
    args: [u64; 6],
    marshal: &Marshal,
) -> Result<i64, RemoteError> {
    let mut gathered = match gather(g, args, marshal, u64::MAX) {
        Ok(gathered) => gathered,
        Err(errno) => return Ok(errno),
    };
    send_call(g, link, g.calling.get(), nr, args, &mut gathered)?;
    let (ret, outbufs) = result_of(link, g)?;
    Ok(scatter(g, nr, &gathered, &outbufs, ret))
}

/// Gathers a call (`marshal`) from the guest, counted, in-buffers of more
/// than `over` bytes left there ([`codec::gather_deferring`]);
/// `Err(errno)`: it fails so without going home.
fn gather(g: &Guest, args: [u64; 6], marshal: &Marshal, over: u64) -> Result<codec::Gathered, i64> {
    g.handle
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    g.write_back();
    codec::gather_deferring(marshal, &args, &GuestMem(&g.mem), over)
}

/// Sends thread `tid`'s call home with the in-buffers `gathered` holds.
fn send_call(
    g: &Guest,
    link: &mut dyn Link,
    tid: i32,
    nr: u32,
    args: [u64; 6],
    gathered: &mut codec::Gathered,
) -> Result<(), RemoteError> {
    g.calls.borrow_mut().sent(tid)?;
    link.send_msg(&RemoteMsg::Syscall {
        tid,
        nr,
        args,
        inbufs: std::mem::take(&mut gathered.inbufs),
    })?;
    Ok(())
}

/// Writes home's out-buffers of call `nr` into the guest; the call's
/// result (`ret`, or EFAULT if they do not fit or are malformed).
fn scatter(g: &Guest, nr: u32, gathered: &codec::Gathered, outbufs: &[Buf], ret: i64) -> i64 {
    scattered(g, nr, gathered.scatter(&GuestMem(&g.mem), outbufs), ret)
}

/// The call's result once its out-buffers were written (`written`).
fn scattered(g: &Guest, nr: u32, written: Result<(), ScatterError>, ret: i64) -> i64 {
    match written {
        Ok(()) => ret,
        Err(ScatterError::Fault) => EFAULT,
        Err(ScatterError::Malformed(why)) => {
            g.warn(|held| {
                warn!(
                    nr,
                    why, held, "a malformed answer from home; the call answers EFAULT"
                )
            });
            EFAULT
        }
    }
}

/// Makes call `nr` at home with `args` (pointers only non-null: home
/// allocates) and these in-buffers; its result and out-buffers.
pub(crate) fn at_home(
    link: &mut dyn Link,
    g: &Guest,
    nr: i64,
    args: [u64; 6],
    inbufs: Vec<Buf>,
) -> Result<(i64, Vec<Buf>), RemoteError> {
    g.calls.borrow_mut().sent(g.calling.get())?;
    link.send_msg(&RemoteMsg::Syscall {
        tid: g.calling.get(),
        nr: abi::nr(nr),
        args,
        inbufs,
    })?;
    result_of(link, g)
}
