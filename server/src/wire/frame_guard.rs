//! A guard between the (decrypted) client stream and `pgwire`'s frontend decoder.
//!
//! `pgwire` 0.42 decodes a message body from the whole read buffer, not from the bytes its
//! length field gives, and reads counts and lengths without checking them. A Parse whose
//! parameter-type count exceeds its body, a Bind whose parameter length is larger than the
//! bytes sent, an Execute or SASLInitialResponse cut short: each panics the connection's
//! task (`advance out of bounds`), and one whose body is longer than what it declares makes
//! the decoder read the rest as the next message. Found by the protocol fuzzer
//! (`server/tests/fuzz_wire.rs`).
//!
//! [`FrameGuard`] cuts the stream into messages by their length fields, checks that each
//! message's fields fit its body exactly (as PostgreSQL's `pq_getmsgend` does), and only
//! then hands its bytes on. A malformed message ends the connection with `08P01`, as in
//! PostgreSQL. The guard allocates only as bytes arrive, never from a length field, and
//! refuses lengths beyond pgwire's own limits before buffering anything.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest message a client may send (PostgreSQL's and pgwire's limit, 1 GiB - 2).
pub const MAX_MESSAGE_LEN: usize = 0x3fff_fffe;
/// The largest start-up packet (pgwire's `MAXIMUM_STARTUP_MESSAGE_LEN`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Untyped messages' codes.
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// Why a message was refused: the text of the `08P01` the client gets.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedMessage(pub String);

impl std::fmt::Display for MalformedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid frontend message: {}", self.0)
    }
}

impl std::error::Error for MalformedMessage {}

/// Where the client is in the protocol, as far as framing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The next message is an untyped StartupMessage or CancelRequest (SSL negotiation is
    /// over when the guard is put in place).
    Startup,
    /// Typed messages; the first password message is a SASLInitialResponse when the server
    /// authenticates with SCRAM.
    Typed { sasl_initial_pending: bool },
}

/// Checks frontend messages, one at a time, as they arrive.
#[derive(Debug)]
pub struct FrameChecker {
    phase: Phase,
    sasl: bool,
}

impl FrameChecker {
    /// A checker for a connection whose SSL negotiation is done; `sasl`: the server
    /// authenticates with SCRAM, so the first password message is a SASLInitialResponse.
    pub fn new(sasl: bool) -> Self {
        Self { phase: Phase::Startup, sasl }
    }

    /// The length of the complete, valid message at the start of `buf`; `Ok(None)` if more
    /// bytes are needed to tell.
    pub fn next_message(&mut self, buf: &[u8]) -> Result<Option<usize>, MalformedMessage> {
        match self.phase {
            Phase::Startup => {
                let Some(len) = read_len(buf, 0) else { return Ok(None) };
                if !(8..=MAX_STARTUP_LEN).contains(&len) {
                    return Err(MalformedMessage(format!("invalid length {len} of a start-up packet")));
                }
                if buf.len() < len {
                    return Ok(None);
                }
                check_startup(&buf[4..len])?;
                self.phase = Phase::Typed { sasl_initial_pending: self.sasl };
                Ok(Some(len))
            }
            Phase::Typed { sasl_initial_pending } => {
                let Some(len) = read_len(buf, 1) else { return Ok(None) };
                let tag = buf[0];
                if !(4..=MAX_MESSAGE_LEN).contains(&len) {
                    return Err(MalformedMessage(format!(
                        "invalid length {len} of message type {:?}",
                        char::from(tag)
                    )));
                }
                if buf.len() < len + 1 {
                    return Ok(None);
                }
                let body = &buf[5..len + 1];
                if tag == b'p' && sasl_initial_pending {
                    check_sasl_initial(body)?;
                    self.phase = Phase::Typed { sasl_initial_pending: false };
                } else {
                    check_typed(tag, body)?;
                }
                Ok(Some(len + 1))
            }
        }
    }
}

/// The length field at `at`, if the buffer holds it (negative lengths become huge, and are
/// refused by the range checks).
fn read_len(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes) as u32 as usize)
}

/// A cursor over one message body that refuses to read past it.
struct Body<'a> {
    rest: &'a [u8],
    what: char,
}

impl<'a> Body<'a> {
    fn short(&self, field: &str) -> MalformedMessage {
        MalformedMessage(format!("message type {:?} ends inside its {field}", self.what))
    }

    fn cstring(&mut self, field: &str) -> Result<&'a [u8], MalformedMessage> {
        let end = self.rest.iter().position(|b| *b == 0).ok_or_else(|| self.short(field))?;
        let (s, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        Ok(s)
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], MalformedMessage> {
        if self.rest.len() < n {
            return Err(self.short(field));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u16(&mut self, field: &str) -> Result<usize, MalformedMessage> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn i32(&mut self, field: &str) -> Result<i32, MalformedMessage> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `count` items of `size` bytes, checked before anything is read.
    fn array(&mut self, count: usize, size: usize, field: &str) -> Result<(), MalformedMessage> {
        self.take(count.saturating_mul(size), field).map(|_| ())
    }

    fn end(&self) -> Result<(), MalformedMessage> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(MalformedMessage(format!(
                "message type {:?} has {} bytes after its last field",
                self.what,
                self.rest.len()
            )))
        }
    }
}

fn check_startup(body: &[u8]) -> Result<(), MalformedMessage> {
    let mut b = Body { rest: body, what: '0' };
    let code = b.i32("protocol version")?;
    if code == CANCEL_REQUEST_CODE {
        // A process id and a secret key of 4 to 256 bytes.
        b.i32("process id")?;
        return if (4..=256).contains(&b.rest.len()) {
            Ok(())
        } else {
            Err(MalformedMessage("a cancel request's secret key must be 4 to 256 bytes".into()))
        };
    }
    // Name/value pairs, then an empty name.
    loop {
        if b.cstring("parameter name")?.is_empty() {
            return b.end();
        }
        b.cstring("parameter value")?;
    }
}

fn check_sasl_initial(body: &[u8]) -> Result<(), MalformedMessage> {
    let mut b = Body { rest: body, what: 'p' };
    b.cstring("SASL mechanism")?;
    let len = b.i32("SASL data length")?;
    if len != -1 {
        let len =
            usize::try_from(len).map_err(|_| MalformedMessage(format!("invalid SASL data length {len}")))?;
        b.take(len, "SASL data")?;
    }
    b.end()
}

fn check_typed(tag: u8, body: &[u8]) -> Result<(), MalformedMessage> {
    let mut b = Body { rest: body, what: char::from(tag) };
    match tag {
        // Query, CopyFail: one string.
        b'Q' | b'f' => {
            b.cstring("text")?;
        }
        // Parse: statement, query, parameter types.
        b'P' => {
            b.cstring("statement name")?;
            b.cstring("query")?;
            let n = b.u16("parameter type count")?;
            b.array(n, 4, "parameter types")?;
        }
        // Bind: portal, statement, parameter formats, parameters, result formats.
        b'B' => {
            b.cstring("portal name")?;
            b.cstring("statement name")?;
            let formats = b.u16("parameter format count")?;
            b.array(formats, 2, "parameter formats")?;
            let params = b.u16("parameter count")?;
            for _ in 0..params {
                let len = b.i32("parameter length")?;
                if len != -1 {
                    let len = usize::try_from(len)
                        .map_err(|_| MalformedMessage(format!("invalid parameter length {len}")))?;
                    b.take(len, "parameter value")?;
                }
            }
            let results = b.u16("result format count")?;
            b.array(results, 2, "result formats")?;
        }
        // Execute: portal, row limit.
        b'E' => {
            b.cstring("portal name")?;
            b.i32("row limit")?;
        }
        // Describe, Close: 'S' or 'P', then a name.
        b'D' | b'C' => {
            b.take(1, "kind")?;
            b.cstring("name")?;
        }
        // Sync, Flush, CopyDone, Terminate: no body.
        b'S' | b'H' | b'c' | b'X' => {}
        // CopyData, password and SASL responses: opaque bytes; anything else is refused
        // by the decoder itself.
        _ => return Ok(()),
    }
    b.end()
}

/// An `AsyncRead + AsyncWrite` that passes on only complete, checked messages.
pub struct FrameGuard<T> {
    inner: T,
    checker: FrameChecker,
    /// Bytes read from the client, not yet checked.
    pending: BytesMut,
    /// Checked bytes not yet handed to the decoder.
    ready: BytesMut,
    refused: Option<String>,
    eof: bool,
}

impl<T> FrameGuard<T> {
    /// Guards `inner`; `already_read` are bytes read from it before (pgwire's SSL
    /// negotiation may have buffered the start of the start-up packet).
    pub fn new(inner: T, already_read: BytesMut, sasl: bool) -> Self {
        Self {
            inner,
            checker: FrameChecker::new(sasl),
            pending: already_read,
            ready: BytesMut::new(),
            refused: None,
            eof: false,
        }
    }

    /// Moves every complete message in `pending` to `ready`, or records why one is refused.
    fn check_pending(&mut self) {
        while self.refused.is_none() {
            match self.checker.next_message(&self.pending) {
                Ok(Some(n)) => {
                    let message = self.pending.split_to(n);
                    self.ready.extend_from_slice(&message);
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "refusing a malformed frontend message");
                    self.refused = Some(e.0);
                }
            }
        }
    }
}

/// Reads from the client in pieces of this size (no read is sized by a length field).
const READ_CHUNK: usize = 16 * 1024;

impl<T: AsyncRead + Unpin> AsyncRead for FrameGuard<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            this.check_pending();
            if !this.ready.is_empty() {
                let n = this.ready.len().min(out.remaining());
                out.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = &this.refused {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    MalformedMessage(reason.clone()),
                )));
            }
            if this.eof {
                // A message cut short by the end of the stream is dropped: the decoder
                // would wait for the rest forever.
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.pending.extend_from_slice(read.filled());
                    }
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FrameGuard<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn after_startup(sasl: bool) -> FrameChecker {
        FrameChecker { phase: Phase::Typed { sasl_initial_pending: sasl }, sasl }
    }

    #[test]
    fn parse_with_more_parameter_types_than_bytes_is_refused() {
        // The message the fuzzer found: it panicked pgwire's decoder.
        let m = typed(b'P', b"\0SELECT 1\0\x00\x05\x00\x00\x00\x17");
        assert!(after_startup(false).next_message(&m).is_err());
        let ok = typed(b'P', b"\0SELECT $1\0\x00\x01\x00\x00\x00\x17");
        assert_eq!(after_startup(false).next_message(&ok), Ok(Some(ok.len())));
    }

    #[test]
    fn bind_lengths_must_fit() {
        let lying = typed(b'B', b"\0\0\x00\x00\x00\x01\x7f\xff\xff\xff\x00\x00");
        assert!(after_startup(false).next_message(&lying).is_err());
        let negative = typed(b'B', b"\0\0\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00");
        assert!(after_startup(false).next_message(&negative).is_err());
        let null = typed(b'B', b"\0\0\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00");
        assert_eq!(after_startup(false).next_message(&null), Ok(Some(null.len())));
        let trailing = typed(b'B', b"\0\0\x00\x00\x00\x00\x00\x00junk");
        assert!(after_startup(false).next_message(&trailing).is_err());
    }

    #[test]
    fn short_execute_sasl_and_lengths_are_refused() {
        assert!(after_startup(false).next_message(&typed(b'E', b"\0\x00")).is_err());
        assert!(after_startup(true).next_message(&typed(b'p', b"SCRAM-SHA-256\0\x00")).is_err());
        assert!(after_startup(true)
            .next_message(&typed(b'p', b"SCRAM-SHA-256\0\x00\x00\x00\x09abc"))
            .is_err());
        // After the initial response, SASL responses are opaque.
        let mut c = after_startup(true);
        let first = typed(b'p', b"SCRAM-SHA-256\0\x00\x00\x00\x03abc");
        assert_eq!(c.next_message(&first), Ok(Some(first.len())));
        assert_eq!(c.next_message(&typed(b'p', b"xyz")), Ok(Some(8)));
        // A length of 1 GiB is refused before anything is buffered; a short read waits.
        assert!(after_startup(false).next_message(b"Q\x7f\xff\xff\xff").is_err());
        assert!(after_startup(false).next_message(b"Q\x00\x00\x00\x02").is_err());
        assert_eq!(after_startup(false).next_message(b"Q\x00\x00\x01\x00abc"), Ok(None));
    }

    #[test]
    fn startup_packets() {
        let mut startup = Vec::new();
        let body = b"\x00\x03\x00\x00user\0weir\0\0";
        startup.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        startup.extend_from_slice(body);
        let mut c = FrameChecker::new(false);
        assert_eq!(c.next_message(&startup), Ok(Some(startup.len())));
        assert_eq!(c.phase, Phase::Typed { sasl_initial_pending: false });
        assert!(FrameChecker::new(false).next_message(b"\x00\x00\x00\x0c\x00\x03\x00\x00user").is_err());
        assert!(FrameChecker::new(false).next_message(b"\x7f\xff\xff\xff").is_err());
        let cancel = b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02";
        assert_eq!(FrameChecker::new(false).next_message(cancel), Ok(Some(16)));
    }
}
