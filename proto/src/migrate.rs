//! The migration channel between a deputy (home) and a remote (the guest's
//! node): one connection per migrated process, over the authenticated
//! stream layer, messages encoded with postcard.
//!
//! ```text
//! home                                  remote
//! Begin, ImageChunk.., ImageEnd  ->
//!                                <-     Started { guest_pid } | Failed
//!                                <-     SyscallPart { tid, inbufs }..  (a large call's
//!                                                         in-buffers, in pieces)
//!                                <-     Syscall { tid, nr, args, inbufs }  (repeated;
//!                                                                  threads' calls overlap)
//! SyscallPart { tid, outbufs }..  ->                       (a large result's pieces)
//! SyscallResult { tid, ret, outbufs } ->
//!                                <-     Exited { code, cpu } | Killed { signal, cpu }
//! ```
//!
//! Job control and coming home:
//!
//! ```text
//!                                <-     Stopped { signal }   (the guest stopped: stop at home too)
//! ComeHome                       ->                          (or the guest calls fork, execve, ...,
//!                                                            or its host sends it home or on)
//!                                <-     Returning { reason, next }, ImageChunk.., ImageEnd
//!                                         | CannotReturn { error }
//! Arrived                        ->                          (it runs at home again)
//!                                <-     Gone { signals }     (guest ended; signals caught in between)
//! Stay { error }                 ->                          (home failed: the guest goes on)
//! ```
//!
//! Which arguments are buffers, and in which direction, is the syscall
//! table's business (`crate::syscalls`); this module only carries bytes.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::image::CpuTime;

/// Bytes that postcard copies as one block (a plain `Vec<u8>` is encoded
/// element by element: 0.16 GB/s measured, against GB/s for a block).
pub use serde_bytes::ByteBuf;

/// A buffer argument: the argument's index and its bytes.
pub type Buf = (u8, ByteBuf);

/// What home sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HomeMsg {
    /// A migration starts; the image follows.
    Begin {
        home: String,
        home_pid: i32,
        image_len: u64,
        /// Locked (`mosaic lock`, `mosaic run --lock`): never moved
        /// automatically, so its host's balancer leaves it where it is.
        #[serde(default)]
        locked: bool,
    },
    /// Part of the image stream (`mosaic_proto::image` format).
    ImageChunk(ByteBuf),
    /// The image is complete.
    ImageEnd,
    /// Result of a forwarded call: raw return value (negative errno) and
    /// the contents of its out-buffers. `tid`: the thread that made it.
    SyscallResult {
        tid: i32,
        ret: i64,
        outbufs: Vec<Buf>,
    },
    /// A signal was sent to the home PID: deliver it to the guest.
    Signal { signal: i32 },
    /// A signal was sent to one thread of the home process (`tgkill`,
    /// `pthread_kill`): deliver it to the guest's thread with TID `tid`.
    ThreadSignal { tid: i32, signal: i32 },
    /// Send the guest home.
    ComeHome,
    /// The process runs at home again: end the guest.
    Arrived,
    /// Home could not take the process back: the guest goes on.
    Stay { error: String },
    /// A piece of thread `tid`'s out-buffers, sent before its
    /// `SyscallResult` when they are large ([`result_messages`]): another
    /// thread's small result passes between pieces. The remote joins a
    /// call's pieces in order.
    SyscallPart { tid: i32, outbufs: Vec<Buf> },
}

/// Most out-buffer bytes one frame of a result carries: an 8 MiB read
/// goes as 128 pieces, between which other threads' results pass (at
/// 256 KiB, a small result waited 0.6 ms on average for the link while a
/// piece was sent).
pub const PIECE: usize = 64 << 10;

/// Thread `tid`'s result as the messages that carry it: its out-buffers
/// in pieces of at most [`PIECE`] bytes (`SyscallPart`s, in order), the
/// last piece in its `SyscallResult`.
pub fn result_messages(tid: i32, ret: i64, outbufs: Vec<Buf>) -> Vec<HomeMsg> {
    result_in_pieces(tid, ret, outbufs, PIECE)
}

/// [`result_messages`] with pieces of at most `piece` bytes (at least 1).
pub fn result_in_pieces(tid: i32, ret: i64, outbufs: Vec<Buf>, piece: usize) -> Vec<HomeMsg> {
    let piece = piece.max(1);
    let total: usize = outbufs.iter().map(|(_, b)| b.len()).sum();
    if total <= piece {
        return vec![HomeMsg::SyscallResult { tid, ret, outbufs }];
    }
    let mut pieces: Vec<Vec<Buf>> = vec![Vec::new()];
    let mut room = piece;
    for (arg, bytes) in outbufs {
        let mut rest: &[u8] = &bytes;
        // An empty buffer is an answer too (a read of 0 bytes).
        let mut first = true;
        while first || !rest.is_empty() {
            first = false;
            if room == 0 {
                pieces.push(Vec::new());
                room = piece;
            }
            let n = rest.len().min(room);
            let (now, later) = rest.split_at(n);
            if let Some(piece) = pieces.last_mut() {
                piece.push((arg, ByteBuf::from(now.to_vec())));
            }
            room -= n;
            rest = later;
        }
    }
    let last = pieces.pop().unwrap_or_default();
    let mut msgs: Vec<HomeMsg> = pieces
        .into_iter()
        .map(|outbufs| HomeMsg::SyscallPart { tid, outbufs })
        .collect();
    msgs.push(HomeMsg::SyscallResult {
        tid,
        ret,
        outbufs: last,
    });
    msgs
}

/// Joins `more` (the next piece of a call's buffers: a result's
/// out-buffers, or a call's in-buffers) onto `parts`: a piece of the
/// argument the last one was of goes on its bytes. Err if the call's
/// buffers would exceed `limit` bytes in all (bounded before they are
/// kept).
pub fn join_parts(parts: &mut Vec<Buf>, more: Vec<Buf>, limit: u64) -> Result<(), LinkError> {
    let had: usize = parts.iter().map(|(_, b)| b.len()).sum();
    let adds: usize = more.iter().map(|(_, b)| b.len()).sum();
    if (had as u64).saturating_add(adds as u64) > limit {
        return Err(LinkError::Malformed(format!(
            "a call's pieces exceed {limit} bytes"
        )));
    }
    for (arg, bytes) in more {
        match parts.last_mut() {
            Some((last, have)) if *last == arg => have.extend_from_slice(&bytes),
            _ => parts.push((arg, bytes)),
        }
    }
    Ok(())
}

/// What the remote sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteMsg {
    /// The guest runs, as `guest_pid` on the remote node.
    Started { guest_pid: i32 },
    /// The guest could not be started; the process stays home.
    Failed { error: String },
    /// A forwarded call: the home TID of the thread that makes it (the
    /// guest's own: it has its home IDs), number, raw arguments, contents
    /// of in-buffers. Threads' calls are independent: another may be sent
    /// before this one's result came.
    Syscall {
        tid: i32,
        nr: u32,
        args: [u64; 6],
        inbufs: Vec<Buf>,
    },
    /// The call of thread `tid` is no longer wanted as it is (the guest is
    /// to be captured): home interrupts it if it still runs, and answers
    /// it either way, with its result if it was made, else as
    /// interrupted (ERESTARTNOINTR: made again where the process goes on).
    /// Crosses its result: home may have answered already.
    Cancel { tid: i32 },
    /// The guest exited with `code`, having used `cpu` in all (every
    /// node's count, as its CPU clocks read at the end).
    Exited { code: i32, cpu: CpuTime },
    /// The guest was killed by `signal`, having used `cpu` in all.
    Killed { signal: i32, cpu: CpuTime },
    /// The guest stopped (job control) by `signal`.
    Stopped { signal: i32 },
    /// The guest is captured and comes home; its image follows.
    /// `next`: the node its host would rather it ran on (home decides).
    Returning {
        reason: String,
        next: Option<String>,
    },
    /// Part of the returning image.
    ImageChunk(ByteBuf),
    /// The returning image is complete.
    ImageEnd,
    /// The guest could not be captured; it goes on where it is.
    CannotReturn { error: String },
    /// The guest is gone; these signals reached it after its capture.
    Gone { signals: Vec<i32> },
    /// The guest could not be started because files it maps are neither
    /// here nor under this node's view of its home's files (`/mfs`); home
    /// may send it again with their pages in the image.
    FilesMissing { error: String },
    /// A piece of thread `tid`'s in-buffers, sent before its `Syscall`
    /// when they are large: read from the guest and sent one piece per
    /// turn of the remote's serving loop, so that other threads' calls
    /// and results pass between them. Home joins a call's pieces in order
    /// ([`join_parts`]). One call is sent in pieces at a time: its pieces
    /// and its `Syscall` come before any piece of another. A `Cancel` of
    /// a thread whose call was sent only in part withdraws it: home drops
    /// its pieces, and nothing runs.
    SyscallPart { tid: i32, inbufs: Vec<Buf> },
}

/// One message of an image stream.
pub enum Frame {
    Chunk(ByteBuf),
    End,
    /// Anything else: the stream is broken, for this reason.
    Broken(String),
}

/// Messages that can carry an image: [`HomeMsg`] going out, [`RemoteMsg`]
/// coming home.
pub trait CarriesImage: Serialize + for<'a> Deserialize<'a> {
    fn chunk(bytes: ByteBuf) -> Self;
    fn end() -> Self;
    fn frame(self) -> Frame;
}

impl CarriesImage for HomeMsg {
    fn chunk(bytes: ByteBuf) -> Self {
        HomeMsg::ImageChunk(bytes)
    }
    fn end() -> Self {
        HomeMsg::ImageEnd
    }
    fn frame(self) -> Frame {
        match self {
            HomeMsg::ImageChunk(b) => Frame::Chunk(b),
            HomeMsg::ImageEnd => Frame::End,
            other => Frame::Broken(format!("unexpected {other:?} inside the image")),
        }
    }
}

impl CarriesImage for RemoteMsg {
    fn chunk(bytes: ByteBuf) -> Self {
        RemoteMsg::ImageChunk(bytes)
    }
    fn end() -> Self {
        RemoteMsg::ImageEnd
    }
    fn frame(self) -> Frame {
        match self {
            RemoteMsg::ImageChunk(b) => Frame::Chunk(b),
            RemoteMsg::ImageEnd => Frame::End,
            RemoteMsg::CannotReturn { error } => Frame::Broken(error),
            other => Frame::Broken(format!("unexpected {other:?} inside the image")),
        }
    }
}

/// Image frames on the link.
const CHUNK: usize = 4 << 20;

/// Writes an image into `M::chunk` messages (call [`ImageOut::finish`]).
pub struct ImageOut<'a, M> {
    link: &'a mut dyn Link,
    buf: Vec<u8>,
    _m: std::marker::PhantomData<M>,
}

impl<'a, M: CarriesImage> ImageOut<'a, M> {
    pub fn new(link: &'a mut dyn Link) -> Self {
        ImageOut {
            link,
            buf: Vec::with_capacity(CHUNK),
            _m: std::marker::PhantomData,
        }
    }

    /// Sends what is left and the end of the image.
    pub fn finish(mut self) -> Result<(), LinkError> {
        self.send_buf()?;
        self.link.send_msg(&M::end())
    }

    fn send_buf(&mut self) -> Result<(), LinkError> {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.link.send_msg(&M::chunk(chunk.into()))?;
        }
        Ok(())
    }
}

impl<M: CarriesImage> std::io::Write for ImageOut<'_, M> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buf()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Reads an image from `M` messages, up to its end message.
pub struct ImageIn<'a, M> {
    link: &'a mut dyn Link,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
    _m: std::marker::PhantomData<M>,
}

impl<'a, M: CarriesImage> ImageIn<'a, M> {
    pub fn new(link: &'a mut dyn Link) -> Self {
        ImageIn {
            link,
            buf: Vec::new(),
            pos: 0,
            ended: false,
            _m: std::marker::PhantomData,
        }
    }

    /// Reads up to the end of the image (what a reader left unread).
    pub fn drain(&mut self) -> Result<(), LinkError> {
        while !self.ended {
            match self.link.recv_msg::<M>()?.frame() {
                Frame::Chunk(_) => {}
                Frame::End => self.ended = true,
                Frame::Broken(why) => return Err(LinkError::Malformed(why)),
            }
        }
        Ok(())
    }
}

impl<M: CarriesImage> std::io::Read for ImageIn<'_, M> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            let msg = self
                .link
                .recv_msg::<M>()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            match msg.frame() {
                Frame::Chunk(c) => {
                    self.buf = c.into_vec();
                    self.pos = 0;
                }
                Frame::End => self.ended = true,
                Frame::Broken(why) => {
                    // Nothing more of this image will come.
                    self.ended = true;
                    return Err(std::io::Error::other(why));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Why the channel failed.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("peer closed the migration channel")]
    Closed,
    #[error("migration channel failed: {0}")]
    Io(String),
    #[error("malformed migration message: {0}")]
    Malformed(String),
    #[error("the peer made no progress for {0:?} (stuck or overloaded)")]
    Stalled(std::time::Duration),
}

/// Encodes a message.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("messages always encode")
}

/// Decodes a message.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, LinkError> {
    postcard::from_bytes(bytes).map_err(|e| LinkError::Malformed(e.to_string()))
}

/// A bidirectional, authenticated, message-framed connection (implemented
/// by `mosaic-node` over its stream layer; here so that deputy and remote
/// need no network code).
pub trait Link: Send {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError>;
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError>;
    /// Whether a frame can be received within `timeout` (true if unsure).
    fn readable(&mut self, _timeout: std::time::Duration) -> Result<bool, LinkError> {
        Ok(true)
    }
    /// The descriptor to poll for incoming frames, if there is one (frames
    /// are never buffered ahead of it).
    fn raw_fd(&self) -> Option<i32> {
        None
    }
    /// From now on, a send or receive that makes no progress for `stall`
    /// fails instead of waiting (`None`: wait as long as it takes). A
    /// migration sets it so that a stuck peer cannot freeze a process.
    fn set_stall_timeout(&mut self, _stall: Option<std::time::Duration>) -> Result<(), LinkError> {
        Ok(())
    }
    /// Bounds what this end queues one way to about `bytes`: a sender
    /// then waits sooner, and what another thread sends after it is not
    /// queued behind megabytes ([`SERVING_QUEUE`]).
    fn bound_queue(&mut self, _way: Queue, _bytes: usize) -> Result<(), LinkError> {
        Ok(())
    }
    /// Whether [`Self::halves`] gives two halves.
    fn splits(&self) -> bool {
        false
    }
    /// The link as a receiving and a sending half that two threads use at
    /// once: a receive never waits for another thread's send (see
    /// [`split`]). `Some` whenever [`Self::splits`].
    fn halves(&mut self) -> Option<(Box<dyn LinkRecv + '_>, Box<dyn LinkSend + '_>)> {
        None
    }
}

/// A way of a link ([`Link::bound_queue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// What this end has sent and the peer not yet taken.
    Send,
    /// What has come and this end not yet read.
    Receive,
}

/// The queue home's results pass through while it serves calls (home's
/// sending queue, the remote's receiving one). A small result sent after
/// a large one waits for what is queued ahead: as the system tunes a
/// loopback socket, megabytes (forward-bench: a getppid beside 8 MiB
/// reads p99 24-25 ms), at this bound 9-10 ms. Images are not slowed:
/// they travel before it is set (to the remote) or the other way (home).
pub const SERVING_QUEUE: usize = 128 << 10;

/// The sending half of a [`split`] link.
pub trait LinkSend: Send {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError>;
}

/// The receiving half of a [`split`] link.
pub trait LinkRecv: Send {
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError>;
    /// Whether a frame can be received within `timeout` (true if unsure).
    fn readable(&mut self, _timeout: std::time::Duration) -> Result<bool, LinkError> {
        Ok(true)
    }
}

/// Typed sending over a [`LinkSend`].
pub trait LinkSendExt: LinkSend {
    fn send_msg<T: Serialize>(&mut self, msg: &T) -> Result<(), LinkError> {
        self.send_bytes(&encode(msg))
    }
}

impl<L: LinkSend + ?Sized> LinkSendExt for L {}

/// `link` as a receiving and a sending half for two threads: its own
/// halves if it has them (a socket read and written at once), else both
/// halves take turns on it under one lock (a receive then waits for a
/// send: a home thread's large result held up the router's receive of
/// another thread's small call).
pub fn split<'a>(link: &'a mut dyn Link) -> (Box<dyn LinkRecv + 'a>, Box<dyn LinkSend + 'a>) {
    if link.splits() {
        if let Some(halves) = link.halves() {
            return halves;
        }
        // Said it splits and did not: both halves fail, never panic.
        return (Box::new(Unsplit), Box::new(Unsplit));
    }
    let joint = std::sync::Arc::new(std::sync::Mutex::new(link));
    (Box::new(Joint(joint.clone())), Box::new(Joint(joint)))
}

/// Both halves of a link that cannot be split.
struct Joint<'a>(std::sync::Arc<std::sync::Mutex<&'a mut dyn Link>>);

impl<'a> Joint<'a> {
    fn lock(&self) -> std::sync::MutexGuard<'_, &'a mut dyn Link> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LinkSend for Joint<'_> {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.lock().send_bytes(frame)
    }
}

impl LinkRecv for Joint<'_> {
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        self.lock().recv_bytes()
    }
    fn readable(&mut self, timeout: std::time::Duration) -> Result<bool, LinkError> {
        self.lock().readable(timeout)
    }
}

/// The halves of a link that said it splits and gave none.
struct Unsplit;

impl LinkSend for Unsplit {
    fn send_bytes(&mut self, _: &[u8]) -> Result<(), LinkError> {
        Err(LinkError::Io("the link could not be split".into()))
    }
}

impl LinkRecv for Unsplit {
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        Err(LinkError::Io("the link could not be split".into()))
    }
}

/// While an image travels, a peer that makes no progress for this long is
/// given up (the process stays or goes on where it was) rather than
/// waited for: generous, since a loaded node restores slowly.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Typed helpers over a [`Link`].
pub trait LinkExt: Link {
    fn send_msg<T: Serialize>(&mut self, msg: &T) -> Result<(), LinkError> {
        self.send_bytes(&encode(msg))
    }
    fn recv_msg<T: for<'a> Deserialize<'a>>(&mut self) -> Result<T, LinkError> {
        let bytes = self.recv_bytes()?;
        decode(&bytes)
    }
}

impl<L: Link + ?Sized> LinkExt for L {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_result_goes_in_pieces_that_join_to_it_and_a_small_one_whole() {
        let big: Vec<u8> = (0..PIECE * 2 + 1000)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        let outbufs: Vec<Buf> = vec![
            (1, big.clone().into()),
            (2, Vec::new().into()),
            (3, b"tail".to_vec().into()),
        ];
        let msgs = result_messages(9, 5, outbufs.clone());
        assert_eq!(msgs.len(), 3, "two pieces, then the result");
        let mut parts = Vec::new();
        let mut ret = None;
        for m in msgs {
            match m {
                HomeMsg::SyscallPart { tid: 9, outbufs } => {
                    assert!(outbufs.iter().map(|(_, b)| b.len()).sum::<usize>() <= PIECE);
                    join_parts(&mut parts, outbufs, 12 << 20).unwrap();
                }
                HomeMsg::SyscallResult {
                    tid: 9,
                    ret: r,
                    outbufs,
                } => {
                    join_parts(&mut parts, outbufs, 12 << 20).unwrap();
                    ret = Some(r);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((ret, parts), (Some(5), outbufs));
        // Small: one message, as it always was.
        let small = vec![(1, b"x".to_vec().into())];
        assert_eq!(
            result_messages(9, 1, small.clone()),
            vec![HomeMsg::SyscallResult {
                tid: 9,
                ret: 1,
                outbufs: small
            }]
        );
        // Pieces beyond what a call can hold are refused before kept.
        let mut parts = vec![(1, vec![0u8; 100].into())];
        assert!(join_parts(&mut parts, vec![(1, vec![0u8; 100].into())], 150).is_err());
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = RemoteMsg::Syscall {
            tid: 7,
            nr: 1,
            args: [1, 2, 3, 4, 5, 6],
            inbufs: vec![(1, b"hi".to_vec().into())],
        };
        assert_eq!(decode::<RemoteMsg>(&encode(&m)).unwrap(), m);
        let h = HomeMsg::SyscallResult {
            tid: 7,
            ret: -9,
            outbufs: vec![],
        };
        assert_eq!(decode::<HomeMsg>(&encode(&h)).unwrap(), h);
        assert!(decode::<RemoteMsg>(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode::<HomeMsg>(&[]).is_err());
    }
}
