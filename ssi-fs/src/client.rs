//! A 9P2000.L client over any request/answer transport: what the `/mfs`
//! FUSE client (and tests) use to reach another node's server.
//!
//! One request at a time. Errors are errnos (`Rlerror`), or the transport's.

use nix::errno::Errno;
use rs9p::{FCall, GetAttrMask, Msg, QId, Stat};

/// Carries 9P messages (without their size prefix) and brings back the
/// answers, in order.
pub trait Transport {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()>;
    fn recv(&mut self) -> std::io::Result<Vec<u8>>;
    /// Sends `msg` with the next ones (a batch), before a [`Self::flush`].
    fn queue(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.send(msg)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn round_trip(&mut self, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        self.send(msg)?;
        self.recv()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        (**self).send(msg)
    }
    fn queue(&mut self, msg: &[u8]) -> std::io::Result<()> {
        (**self).queue(msg)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }
    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        (**self).recv()
    }
}

/// Size-prefixed 9P on a byte stream (a plain TCP connection).
pub struct Stream<S>(pub S);

impl<S: std::io::Read + std::io::Write> Transport for Stream<S> {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(msg.len() + 4);
        let len = u32::try_from(msg.len() + 4)
            .map_err(|_| std::io::Error::other("a 9P message larger than 4 GiB"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(msg);
        self.0.write_all(&out)
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        let mut size = [0u8; 4];
        self.0.read_exact(&mut size)?;
        let size = u32::from_le_bytes(size);
        if !(7..=crate::server::MAX_MSIZE).contains(&size) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a 9P answer of {size} bytes"),
            ));
        }
        let mut body = vec![0u8; size as usize - 4];
        self.0.read_exact(&mut body)?;
        Ok(body)
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Errno(Errno),
    #[error("9P transport: {0}")]
    Io(#[from] std::io::Error),
    #[error("9P protocol: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One directory entry of `Rreaddir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub qid_type: u8,
    pub ino: u64,
    /// Where the next read goes on from.
    pub offset: u64,
    pub kind: u8,
    pub name: String,
}

/// A connection to one 9P2000.L server.
pub struct Client<T> {
    transport: T,
    msize: u32,
    next_fid: u32,
    /// A request failed in the transport or the protocol: answers may be
    /// left on the stream, so nothing more is asked on it.
    broken: bool,
}

const RREADDIR: u8 = 41;
/// Requests a batch sends before it reads answers.
const BATCH: usize = 256;

impl<T: Transport> Client<T> {
    /// Negotiates 9P2000.L with messages of up to `msize` bytes.
    pub fn new(transport: T, msize: u32) -> Result<Client<T>> {
        let mut c = Client {
            transport,
            msize,
            next_fid: 1,
            broken: false,
        };
        match c.call(FCall::TVersion {
            msize,
            version: rs9p::P92000L.into(),
        })? {
            FCall::RVersion {
                msize: agreed,
                version,
            } if version == rs9p::P92000L && (64..=msize).contains(&agreed) => c.msize = agreed,
            other => return Err(ClientError::Protocol(format!("version: {other:?}"))),
        }
        Ok(c)
    }

    /// The most data one read or write carries.
    pub fn iounit(&self) -> u32 {
        self.msize - 24
    }

    fn encode_tagged(tag: u16, body: FCall) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        rs9p::serialize::write_msg(&mut out, &Msg { tag, body })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(out)
    }

    fn encode(body: FCall) -> Result<Vec<u8>> {
        Self::encode_tagged(1, body)
    }

    fn decode(answer: &[u8]) -> Result<Msg> {
        if !crate::server::data_fits(answer, crate::server::RREAD, 3) {
            return Err(ClientError::Protocol(
                "an Rread longer than its message".into(),
            ));
        }
        rs9p::serialize::read_msg(&mut &answer[..])
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn body(msg: Msg) -> Result<FCall> {
        match msg.body {
            FCall::RlError { ecode } => Err(ClientError::Errno(Errno::from_raw(
                i32::try_from(ecode).unwrap_or(libc::EIO),
            ))),
            body => Ok(body),
        }
    }

    /// Whether a transport or protocol failure ended this connection.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Runs `f` unless the connection is broken, and marks it broken when
    /// `f` fails other than with an errno.
    fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.broken {
            return Err(ClientError::Io(std::io::Error::other(
                "this 9P connection failed earlier",
            )));
        }
        let r = f(self);
        if matches!(r, Err(ClientError::Io(_) | ClientError::Protocol(_))) {
            self.broken = true;
        }
        r
    }

    /// Sends one request and waits for its answer (an `Rlerror` is an
    /// `Err`).
    pub fn call(&mut self, body: FCall) -> Result<FCall> {
        self.guarded(|c| {
            let answer = c.transport.round_trip(&Self::encode(body)?)?;
            let msg = Self::decode(&answer)?;
            if msg.tag != 1 {
                return Err(ClientError::Protocol(format!(
                    "an answer tagged {} to a request tagged 1",
                    msg.tag
                )));
            }
            Self::body(msg)
        })
    }

    /// Sends small requests back to back, then takes their answers: one
    /// round trip for all (the server answers a connection's requests in
    /// order). Each answer is its request's result. Not for writes: a
    /// batch must fit the sockets' buffers while nobody reads.
    pub fn batch(&mut self, reqs: Vec<FCall>) -> Result<Vec<Result<FCall>>> {
        self.guarded(|c| c.batch_unguarded(reqs))
    }

    fn batch_unguarded(&mut self, reqs: Vec<FCall>) -> Result<Vec<Result<FCall>>> {
        let n = reqs.len();
        let mut out: Vec<Option<Result<FCall>>> = (0..n).map(|_| None).collect();
        for chunk_start in (0..n).step_by(BATCH) {
            let end = (chunk_start + BATCH).min(n);
            // Tags within a chunk (at most BATCH of them).
            for (i, req) in reqs[chunk_start..end].iter().enumerate() {
                self.transport.queue(&Self::encode_tagged(
                    u16::try_from(i).unwrap_or(u16::MAX),
                    req.clone(),
                )?)?;
            }
            self.transport.flush()?;
            for _ in chunk_start..end {
                let msg = Self::decode(&self.transport.recv()?)?;
                let slot = out[chunk_start..end]
                    .get_mut(msg.tag as usize)
                    .filter(|s| s.is_none())
                    .ok_or_else(|| {
                        ClientError::Protocol(format!("an answer tagged {}", msg.tag))
                    })?;
                *slot = Some(Self::body(msg));
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Protocol("no answer".into()))))
            .collect())
    }

    /// A fid number not in use on this connection.
    pub fn fresh_fid(&mut self) -> u32 {
        self.next_fid = self.next_fid.wrapping_add(1).max(2);
        if self.next_fid == rs9p::NOFID {
            self.next_fid = 2;
        }
        self.next_fid
    }

    /// Attaches to the export's root; returns its fid.
    pub fn attach(&mut self, uname: &str) -> Result<u32> {
        self.attach_to(uname, "")
    }

    /// Attaches to the tree named `aname` (`""`: the export;
    /// [`crate::synth::ANAME`]: the synthetic `proc`).
    pub fn attach_to(&mut self, uname: &str, aname: &str) -> Result<u32> {
        let fid = self.fresh_fid();
        match self.call(FCall::TAttach {
            fid,
            afid: rs9p::NOFID,
            uname: uname.into(),
            aname: aname.into(),
            n_uname: 0,
        })? {
            FCall::RAttach { .. } => Ok(fid),
            other => Err(ClientError::Protocol(format!("attach: {other:?}"))),
        }
    }

    /// Walks from `fid` through `names`; returns the new fid (ENOENT if the
    /// walk stopped short).
    pub fn walk(&mut self, fid: u32, names: &[&str]) -> Result<u32> {
        let newfid = self.fresh_fid();
        match self.call(FCall::TWalk {
            fid,
            newfid,
            wnames: names.iter().map(|s| s.to_string()).collect(),
        })? {
            FCall::RWalk { wqids } if wqids.len() == names.len() => Ok(newfid),
            FCall::RWalk { .. } => Err(ClientError::Errno(Errno::ENOENT)),
            other => Err(ClientError::Protocol(format!("walk: {other:?}"))),
        }
    }

    /// Walks a path of `/`-separated names from `fid`.
    pub fn walk_path(&mut self, fid: u32, path: &str) -> Result<u32> {
        let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
        self.walk(fid, &names)
    }

    pub fn getattr(&mut self, fid: u32) -> Result<(QId, Stat)> {
        match self.call(FCall::TGetAttr {
            fid,
            req_mask: GetAttrMask::ALL,
        })? {
            FCall::RGetAttr { qid, stat, .. } => Ok((qid, stat)),
            other => Err(ClientError::Protocol(format!("getattr: {other:?}"))),
        }
    }

    /// Opens `fid` with Linux open flags.
    pub fn open(&mut self, fid: u32, flags: i32) -> Result<QId> {
        match self.call(FCall::TlOpen {
            fid,
            flags: flags.cast_unsigned(),
        })? {
            FCall::RlOpen { qid, .. } => Ok(qid),
            other => Err(ClientError::Protocol(format!("lopen: {other:?}"))),
        }
    }

    /// Creates `name` in directory `fid`, which then stands for the new
    /// file, open.
    pub fn create(&mut self, fid: u32, name: &str, flags: i32, mode: u32) -> Result<QId> {
        match self.call(FCall::TlCreate {
            fid,
            name: name.into(),
            flags: flags.cast_unsigned(),
            mode,
            gid: 0,
        })? {
            FCall::RlCreate { qid, .. } => Ok(qid),
            other => Err(ClientError::Protocol(format!("lcreate: {other:?}"))),
        }
    }

    pub fn read(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>> {
        match self.call(FCall::TRead {
            fid,
            offset,
            count: count.min(self.iounit()),
        })? {
            FCall::RRead { data } => Ok(data.0),
            other => Err(ClientError::Protocol(format!("read: {other:?}"))),
        }
    }

    /// Reads an open file to its end.
    pub fn read_all(&mut self, fid: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let chunk = self.read(fid, out.len() as u64, self.iounit())?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
        }
    }

    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<u32> {
        let n = data.len().min(self.iounit() as usize);
        match self.call(FCall::TWrite {
            fid,
            offset,
            data: rs9p::Data(data[..n].to_vec()),
        })? {
            FCall::RWrite { count } => Ok(count),
            other => Err(ClientError::Protocol(format!("write: {other:?}"))),
        }
    }

    /// Entries of an open directory from `offset` (parsed here: rs9p's
    /// decoder takes the byte count for an entry count).
    pub fn readdir(&mut self, fid: u32, offset: u64) -> Result<Vec<DirEntry>> {
        let count = self.iounit();
        self.readdir_up_to(fid, offset, count)
    }

    /// [`Self::readdir`], at most `count` bytes of entries.
    pub fn readdir_up_to(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<DirEntry>> {
        self.guarded(|c| c.readdir_unguarded(fid, offset, count.min(c.iounit())))
    }

    fn readdir_unguarded(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<DirEntry>> {
        let req = Self::encode(FCall::TReadDir { fid, offset, count })?;
        let answer = self.transport.round_trip(&req)?;
        if answer.first() != Some(&RREADDIR) {
            // An Rlerror (its errno), or a stray answer.
            let other = Self::body(Self::decode(&answer)?)?;
            return Err(ClientError::Protocol(format!("readdir: {other:?}")));
        }
        let bad = || ClientError::Protocol("a short Rreaddir".into());
        let body = answer.get(3..).ok_or_else(bad)?;
        let count = u32::from_le_bytes(
            body.get(..4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let mut rest = body.get(4..4 + count).ok_or_else(bad)?;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let fixed = rest.get(..24).ok_or_else(bad)?;
            let u64_at =
                |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().expect("8 bytes"));
            let len = u16::from_le_bytes([fixed[22], fixed[23]]) as usize;
            let name = rest.get(24..24 + len).ok_or_else(bad)?;
            out.push(DirEntry {
                qid_type: fixed[0],
                ino: u64_at(5),
                offset: u64_at(13),
                kind: fixed[21],
                name: String::from_utf8_lossy(name).into_owned(),
            });
            rest = &rest[24 + len..];
        }
        Ok(out)
    }

    /// Every entry of directory `fid` (opened here), without `.` and `..`.
    pub fn list(&mut self, fid: u32) -> Result<Vec<DirEntry>> {
        let dir = self.walk(fid, &[])?;
        self.open(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let chunk = self.readdir(dir, offset)?;
            let Some(last) = chunk.last() else { break };
            if last.offset <= offset {
                return Err(ClientError::Protocol("readdir offsets go backwards".into()));
            }
            offset = last.offset;
            all.extend(
                chunk
                    .into_iter()
                    .filter(|e| e.name != "." && e.name != ".."),
            );
        }
        self.clunk(dir)?;
        Ok(all)
    }

    pub fn clunk(&mut self, fid: u32) -> Result<()> {
        match self.call(FCall::TClunk { fid })? {
            FCall::RClunk => Ok(()),
            other => Err(ClientError::Protocol(format!("clunk: {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Session;

    /// The server in this process, as a transport.
    struct Local(Session, std::collections::VecDeque<Vec<u8>>);

    impl Transport for Local {
        fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
            let answer = self.0.answer_message(msg)?;
            self.1.push_back(answer);
            Ok(())
        }
        fn recv(&mut self) -> std::io::Result<Vec<u8>> {
            self.1
                .pop_front()
                .ok_or_else(|| std::io::Error::other("nothing sent"))
        }
    }

    #[test]
    fn the_client_reads_lists_and_writes_through_the_server() {
        let dir = std::env::temp_dir().join(format!("mosaic-9p-client-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a"), "alpha").unwrap();
        // Enough names to need several reads of the directory.
        for i in 0..300 {
            std::fs::write(dir.join(format!("sub/file-with-a-long-name-{i:04}")), "").unwrap();
        }
        let export = std::sync::Arc::new(crate::export::Export::open(&dir, false).unwrap());
        let mut c = Client::new(Local(Session::new(export), Default::default()), 8192).unwrap();
        let root = c.attach("root").unwrap();
        let a = c.walk_path(root, "sub/a").unwrap();
        assert_eq!(c.getattr(a).unwrap().1.size, 5);
        c.open(a, libc::O_RDONLY).unwrap();
        assert_eq!(c.read_all(a).unwrap(), b"alpha");
        let sub = c.walk_path(root, "sub").unwrap();
        let names = c.list(sub).unwrap();
        assert_eq!(names.len(), 301);
        assert!(
            names
                .iter()
                .any(|e| e.name == "a" && e.kind == libc::DT_REG)
        );
        let new = c.walk(sub, &[]).unwrap();
        c.create(new, "b", libc::O_WRONLY, 0o644).unwrap();
        assert_eq!(c.write(new, 0, b"beta").unwrap(), 4);
        c.clunk(new).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "beta");
        assert!(matches!(
            c.walk_path(root, "sub/none"),
            Err(ClientError::Errno(Errno::ENOENT))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
