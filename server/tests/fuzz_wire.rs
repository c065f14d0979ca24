//! Protocol fuzzers: the frontend message decoder Weir runs (`pgwire`'s), in process, and a
//! live server fed random, mutated and truncated messages over TCP in every connection
//! state — before start-up (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), during
//! SCRAM authentication, and in a session (Query, Parse/Bind/Execute with random parameter
//! formats and lengths, Describe, Close, COPY data, unknown message types).
//!
//! The decoder (behind Weir's [`FrameChecker`], as in the server) must never panic, nor
//! allocate much more than the bytes it was given, whatever a length or count field claims. The server must never panic (its log is searched), must
//! keep its memory bounded, and must still answer a normal client after every burst.
//!
//! Budget: `WEIR_FUZZ_SECONDS` (default 10 in process, 25 over TCP), seed: `WEIR_FUZZ_SEED`.

use std::cell::Cell;
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, SslNegotiationMetaMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_server::wire::frame_guard::FrameChecker;

use crate::clients::{check, show};
use crate::support::fuzz::{deadline, FuzzRng};
use crate::support::hash_password;
use crate::support::TestServer;

// --- Measuring allocations: the largest single allocation made by this thread while a
// measurement is on, so that a length field of 1 GB that makes the decoder reserve 1 GB is
// caught without having to send 1 GB.

struct MeasuringAllocator;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: thread-local storage may already be gone while a thread exits.
    let _ = MEASURING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

unsafe impl std::alloc::GlobalAlloc for MeasuringAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        std::alloc::System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: MeasuringAllocator = MeasuringAllocator;

/// The largest allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (out, LARGEST.with(|l| l.get()))
}

// --- Building frontend messages.

fn cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

fn pick_bytes(rng: &mut FuzzRng, items: &[&'static [u8]]) -> &'static [u8] {
    items[rng.below(items.len())]
}

/// A typed message: tag, length (including itself), body.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An untyped start-up phase message: length, then `code` and `body`.
fn startup_packet(code: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((body.len() + 8) as i32).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn startup(user: &[u8], extra: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, b"user");
    cstr(&mut body, user);
    cstr(&mut body, b"database");
    cstr(&mut body, b"weir");
    for (k, v) in extra {
        cstr(&mut body, k);
        cstr(&mut body, v);
    }
    body.push(0);
    startup_packet(196608, &body)
}

const SQL_SNIPPETS: &[&str] = &[
    "SELECT 1",
    "SELECT $1::int + 1",
    "SELECT $1, $2",
    "INSERT INTO fz VALUES ($1, $2)",
    "SELECT * FROM fz WHERE id = $1",
    "COPY fz FROM STDIN",
    "BEGIN",
    "COMMIT",
    "SET statement_timeout = $1",
    "SELECT '\u{0}'",
    "",
    ";;;",
];

/// Random but plausible bytes for SQL text: a snippet, garbage or invalid UTF-8.
fn sql_text(rng: &mut FuzzRng) -> Vec<u8> {
    match rng.below(4) {
        0 => {
            let len = rng.below(64);
            rng.bytes(len)
        }
        1 => vec![0xC3, 0x28, b'x', 0xFF, 0xFE],
        _ => rng.pick(SQL_SNIPPETS).as_bytes().to_vec(),
    }
}

/// A parameter value of random length and contents, sometimes NULL (-1) or a lying length.
fn parameter(rng: &mut FuzzRng, out: &mut Vec<u8>) {
    match rng.below(8) {
        0 => out.extend_from_slice(&(-1i32).to_be_bytes()),
        1 => out.extend_from_slice(&(i32::MAX).to_be_bytes()),
        2 => out.extend_from_slice(&(-(rng.between(2, 1 << 30) as i32)).to_be_bytes()),
        _ => {
            let value: Vec<u8> = match rng.below(5) {
                0 => pick_bytes(rng, &[b"42", b"-1", b"99999999999", b"1.5", b"true"]).to_vec(),
                1 => (rng.next_u64() as i32).to_be_bytes().to_vec(),
                2 => rng.next_u64().to_be_bytes().to_vec(),
                3 => vec![0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                _ => {
                    let len = rng.below(24);
                    rng.bytes(len)
                }
            };
            out.extend_from_slice(&(value.len() as i32).to_be_bytes());
            out.extend_from_slice(&value);
        }
    }
}

/// A frontend message of a session, well-formed or not.
fn session_message(rng: &mut FuzzRng) -> Vec<u8> {
    match rng.below(13) {
        0 => {
            let mut body = sql_text(rng);
            body.push(0);
            message(b'Q', &body)
        }
        1 => {
            let mut body = Vec::new();
            cstr(&mut body, pick_bytes(rng, &[b"", b"s1", b"s2"]));
            cstr(&mut body, &sql_text(rng));
            let n = rng.pick(&[0i16, 1, 2, 3, -1, i16::MAX]).to_owned();
            body.extend_from_slice(&n.to_be_bytes());
            for _ in 0..rng.below(4) {
                let oid =
                    *rng.pick(&[0u32, 16, 20, 21, 23, 25, 700, 701, 1082, 1114, 1184, 1700, 3802, 9999]);
                body.extend_from_slice(&oid.to_be_bytes());
            }
            message(b'P', &body)
        }
        2 | 3 => {
            let mut body = Vec::new();
            cstr(&mut body, pick_bytes(rng, &[b"", b"p1"]));
            cstr(&mut body, pick_bytes(rng, &[b"", b"s1", b"s2", b"nope"]));
            let formats = *rng.pick(&[0i16, 1, 2, -1, 300]);
            body.extend_from_slice(&formats.to_be_bytes());
            for _ in 0..rng.below(4) {
                body.extend_from_slice(&rng.pick(&[0i16, 1, 2, -1]).to_be_bytes());
            }
            let params = *rng.pick(&[0i16, 1, 2, -1, i16::MAX]);
            body.extend_from_slice(&params.to_be_bytes());
            for _ in 0..rng.below(4) {
                parameter(rng, &mut body);
            }
            let results = *rng.pick(&[0i16, 1, 3]);
            body.extend_from_slice(&results.to_be_bytes());
            for _ in 0..rng.below(3) {
                body.extend_from_slice(&rng.pick(&[0i16, 1, 7]).to_be_bytes());
            }
            message(b'B', &body)
        }
        4 => {
            let mut body = Vec::new();
            cstr(&mut body, pick_bytes(rng, &[b"", b"p1"]));
            body.extend_from_slice(&rng.pick(&[0i32, 1, -1, i32::MAX]).to_be_bytes());
            message(b'E', &body)
        }
        5 => {
            let mut body = vec![*rng.pick(b"SPX")];
            cstr(&mut body, pick_bytes(rng, &[b"", b"s1", b"p1"]));
            message(*rng.pick(b"DC"), &body)
        }
        6 => message(b'S', &[]),
        7 => message(b'H', &[]),
        8 => {
            let len = rng.below(200);
            message(b'd', &rng.bytes(len))
        }
        9 => message(*rng.pick(b"cf"), b"why\0"),
        10 => {
            // A SASL or password message outside authentication.
            let len = rng.below(40);
            message(b'p', &rng.bytes(len))
        }
        11 => {
            let tag = rng.next_u64() as u8;
            let len = rng.below(16);
            message(tag, &rng.bytes(len))
        }
        _ => {
            // A COPY that then receives rows, garbage and an end.
            let mut out = message(b'Q', b"COPY fz FROM STDIN\0");
            for _ in 0..rng.below(4) {
                let row = pick_bytes(rng, &[b"1\tx\n", b"2\t\\N\n", b"zz\n", b"\xff\xfe\t\n", b"3\t4\t5\n"]);
                out.extend(message(b'd', row));
            }
            out.extend(message(*rng.pick(b"cf"), b"\0"));
            out
        }
    }
}

/// Corrupts a message the way a broken or hostile client would: a flipped byte, a lying
/// length, a truncation, or trailing garbage.
fn mutate(rng: &mut FuzzRng, mut bytes: Vec<u8>, length_at: usize) -> Vec<u8> {
    match rng.below(6) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if bytes.len() >= length_at + 4 => {
            let len = *rng.pick(&[0i32, 3, 4, -1, i32::MIN, i32::MAX, 0x3fff_fffe, 0x4000_0000, 10_001]);
            bytes[length_at..length_at + 4].copy_from_slice(&len.to_be_bytes());
        }
        2 if !bytes.is_empty() => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
        }
        3 => {
            let len = rng.below(12);
            bytes.extend(rng.bytes(len));
        }
        _ => {}
    }
    bytes
}

// --- In process: the decoder.

/// Every decoder state, fed random, mutated and truncated input: no panic, and no
/// allocation larger than the input (plus a small constant) whatever a length claims.
pub async fn decoder_never_panics_nor_allocates_from_a_length() -> Result<(), String> {
    let mut rng = FuzzRng::for_fuzzer("wire_decoder");
    let end = deadline(10);
    let mut inputs = 0u64;
    let mut decoded = 0u64;
    let mut worst = (0usize, Vec::new());
    while std::time::Instant::now() < end {
        for _ in 0..200 {
            let state = rng.below(3);
            let input = match state {
                0 => {
                    let m = match rng.below(4) {
                        0 => startup_packet(80877103, &[]),
                        1 => startup_packet(80877104, &[]),
                        2 => startup_packet(80877102, &rng.next_u64().to_be_bytes()),
                        _ => startup(b"weir", &[(b"options", b"-c x=y")]),
                    };
                    mutate(&mut rng, m, 0)
                }
                1 => {
                    let m = match rng.below(2) {
                        0 => startup_packet(80877102, &rng.next_u64().to_be_bytes()),
                        _ => startup(&sql_text(&mut rng), &[]),
                    };
                    mutate(&mut rng, m, 0)
                }
                _ => {
                    let mut m = Vec::new();
                    for _ in 0..rng.between(1, 3) {
                        let one = session_message(&mut rng);
                        m.extend(mutate(&mut rng, one, 1));
                    }
                    m
                }
            };
            inputs += 1;
            let input_len = input.len();
            let sasl = rng.chance(50);
            let (n, largest) = largest_allocation(|| decode_all(state, &input, sasl));
            decoded += n;
            // The decoder copies at most the input, in a few pieces; 64 KiB is slack for
            // fixed-size tables, never a length field's worth.
            if largest > input_len * 4 + 64 * 1024 && largest > worst.0 {
                worst = (largest, input);
            }
        }
    }
    println!("  wire_decoder: {inputs} inputs, {decoded} messages decoded");
    check(
        worst.0 == 0,
        format!("the decoder allocated {} bytes for a {}-byte input: {:?}", worst.0, worst.1.len(), worst.1),
    )
}

/// Decodes `input` as the server does in decoder state `state` (0: before SSL
/// negotiation, 1: before start-up, 2: in a session): pgwire's decoder negotiates SSL, then
/// Weir's [`FrameChecker`] passes on whole, well-formed messages, which pgwire decodes
/// (password messages also into the SASL messages the SCRAM handler reads). Returns how
/// many messages were decoded.
fn decode_all(state: usize, input: &[u8], sasl: bool) -> u64 {
    let mut context = DecodeContext::default();
    let mut buf = BytesMut::from(input);
    let mut n = 0;
    if state == 0 {
        loop {
            match PgWireFrontendMessage::decode(&mut buf, &context) {
                Ok(Some(PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::None))) => break,
                Ok(Some(_)) => n += 1,
                Ok(None) | Err(_) => return n,
            }
        }
    }
    context.awaiting_frontend_ssl = false;
    let mut checker = FrameChecker::new(sasl);
    if state == 2 {
        // Already past start-up: let the checker see one.
        let _ = checker.next_message(&startup(b"weir", &[]));
    }
    let mut accepted = 0;
    while let Ok(Some(len)) = checker.next_message(&buf[accepted..]) {
        accepted += len;
    }
    buf.truncate(accepted);
    context.awaiting_frontend_startup = state <= 1;
    let mut sasl_initial = sasl;
    loop {
        match PgWireFrontendMessage::decode(&mut buf, &context) {
            Ok(Some(PgWireFrontendMessage::PasswordMessageFamily(family))) => {
                n += 1;
                if std::mem::take(&mut sasl_initial) {
                    let _ = family.into_sasl_initial_response();
                } else {
                    let _ = family.into_sasl_response();
                }
            }
            Ok(Some(PgWireFrontendMessage::Startup(_)))
            | Ok(Some(PgWireFrontendMessage::CancelRequest(_))) => {
                n += 1;
                context.awaiting_frontend_startup = false;
            }
            Ok(Some(_)) => n += 1,
            Ok(None) | Err(_) => return n,
        }
    }
}

// --- Over TCP: a live server.

/// Sends `bytes` on a fresh connection, reads whatever comes back for a moment, and
/// closes. Errors are the point; only a server that stops answering others is a failure.
async fn burst(port: u16, bytes: &[u8], keep_reading: Duration) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else { return };
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 16 * 1024];
    let until = tokio::time::Instant::now() + keep_reading;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
}

/// A normal client must get an answer, quickly, after each burst.
async fn still_answers(server: &TestServer, password: Option<&str>) -> Result<(), String> {
    let mut url = server.connection_string();
    if let Some(p) = password {
        url.push_str(&format!(" password={p}"));
    }
    let attempt = async {
        let (client, connection) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls).await.map_err(show)?;
        tokio::spawn(connection);
        let two: i32 = client.query_one("SELECT 1 + 1", &[]).await.map_err(show)?.get(0);
        check(two == 2, "1 + 1")
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .map_err(|_| "a normal client got no answer within 20 s".to_string())?
}

fn panics_in(log: &str) -> Option<String> {
    log.lines().find(|l| l.contains("panicked at")).map(str::to_string)
}

/// Random and mutated messages in every connection state against a live server (trust
/// authentication), and the same start-up and SCRAM exchanges against one that requires a
/// password. Between bursts a normal client must be answered; at the end the log must hold
/// no panic and peak memory must not have grown by a length field's worth.
pub async fn live_server_survives_random_messages() -> Result<(), String> {
    let mut rng = FuzzRng::for_fuzzer("wire_network");
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("trust"));
    let setup = server.connect().await;
    setup.simple_query("CREATE TABLE fz (id INT PRIMARY KEY, note TEXT)").await.map_err(show)?;
    drop(setup);

    let config = dir.path().join("scram.toml");
    let verifier = hash_password("pencil")?;
    std::fs::write(&config, format!("[auth]\npassword = \"{verifier}\"\n")).map_err(show)?;
    let scram =
        TestServer::start_with(&dir.path().join("scram"), &["--config".into(), config.display().to_string()]);

    let rss_before = server.peak_rss_kib().unwrap_or(0);
    let end = deadline(25);
    let mut bursts = 0u64;
    while std::time::Instant::now() < end {
        let scram_round = rng.chance(25);
        let target = if scram_round { &scram } else { &server };
        for _ in 0..8 {
            let bytes = if scram_round { scram_exchange(&mut rng) } else { connection_bytes(&mut rng) };
            burst(target.port, &bytes, Duration::from_millis(rng.between(5, 60) as u64)).await;
            bursts += 1;
        }
        still_answers(target, scram_round.then_some("pencil"))
            .await
            .map_err(|e| format!("after {bursts} bursts: {e}; log tail: {}", target.log_tail()))?;
    }
    let rss_after = server.peak_rss_kib().unwrap_or(0);
    println!(
        "  wire_network: {bursts} connections of random messages; peak RSS {} MiB -> {} MiB",
        rss_before / 1024,
        rss_after / 1024
    );
    for s in [&server, &scram] {
        if let Some(line) = panics_in(&s.log()) {
            return Err(format!("the server panicked: {line}"));
        }
    }
    // Lying lengths of up to 1 GiB were sent many times; memory must not follow them.
    check(
        rss_after.saturating_sub(rss_before) < 512 * 1024,
        format!("peak RSS grew from {rss_before} KiB to {rss_after} KiB"),
    )
}

/// What one connection sends: sometimes garbage before start-up, sometimes a start-up
/// (through an SSLRequest the server declines) followed by session messages.
fn connection_bytes(rng: &mut FuzzRng) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.below(6) {
        0 => {
            let len = rng.below(40);
            return rng.bytes(len);
        }
        1 => {
            let m = match rng.below(3) {
                0 => startup_packet(80877102, &rng.next_u64().to_be_bytes()),
                1 => startup_packet(80877104, &[]),
                _ => startup(b"weir", &[(b"options", &sql_text(rng))]),
            };
            return mutate(rng, m, 0);
        }
        2 => out.extend(startup_packet(80877103, &[])),
        _ => {}
    }
    let extra: Vec<(&[u8], &[u8])> = match rng.below(4) {
        0 => vec![(b"application_name", b"\xff\xfe"), (b"client_encoding", b"LATIN1")],
        1 => vec![(b"options", b"-c statement_timeout=99999999999999h")],
        _ => vec![],
    };
    out.extend(startup(b"weir", &extra));
    for _ in 0..rng.between(1, 12) {
        let m = session_message(rng);
        out.extend(if rng.chance(30) { mutate(rng, m, 1) } else { m });
    }
    if rng.chance(50) {
        out.extend(message(b'S', &[]));
    }
    out
}

/// A SCRAM exchange with random, mutated or truncated client-first and client-final
/// messages (the server's challenge is not read, so proofs are always wrong).
fn scram_exchange(rng: &mut FuzzRng) -> Vec<u8> {
    let mut out = startup(b"weir", &[]);
    let mut initial = Vec::new();
    cstr(&mut initial, pick_bytes(rng, &[b"SCRAM-SHA-256", b"SCRAM-SHA-256-PLUS", b"PLAIN", b""]));
    let first: Vec<u8> = match rng.below(4) {
        0 => b"n,,n=weir,r=abcdefghijklmnop".to_vec(),
        1 => b"p=tls-server-end-point,,n=,r=x".to_vec(),
        2 => b"y,,n=weir,r=".to_vec(),
        _ => {
            let len = rng.below(60);
            rng.bytes(len)
        }
    };
    let declared = *rng.pick(&[first.len() as i32, -1, 0, i32::MAX, first.len() as i32 + 10]);
    initial.extend_from_slice(&declared.to_be_bytes());
    initial.extend_from_slice(&first);
    out.extend(mutate(rng, message(b'p', &initial), 1));
    let last: Vec<u8> = match rng.below(3) {
        0 => b"c=biws,r=abcdefghijklmnop,p=AAAA".to_vec(),
        1 => b"c=,r=,p=".to_vec(),
        _ => {
            let len = rng.below(80);
            rng.bytes(len)
        }
    };
    out.extend(mutate(rng, message(b'p', &last), 1));
    out
}
