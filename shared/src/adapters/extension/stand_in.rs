//! A local extension for the library's tests: a plain TCP server on 127.0.0.1, a thread per
//! connection, that answers each request as told (JSON, never, or a body that never ends in
//! any framing) and counts what it was asked and what it got out.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How an endless body's end would be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    CloseDelimited,
    /// A `Content-Length` as large as the body.
    Length,
}

#[derive(Debug, Clone)]
pub enum Behaviour {
    Json(u16, String),
    /// Reads the request and never answers (until the client gives up).
    Hang,
    /// 200 with this many bytes of an unterminated JSON string.
    Endless(Framing, usize),
    /// The other behaviour, after a while (a cache miss: the extension asks AWS).
    Slow(Duration, Box<Behaviour>),
}

type Respond = dyn Fn(usize) -> Behaviour + Send + Sync;

pub struct LocalStandIn {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    written: Arc<AtomicU64>,
}

impl LocalStandIn {
    /// Answers the `n`th request (from 0) as `respond(n)` says.
    pub fn start(respond: impl Fn(usize) -> Behaviour + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let written = Arc::new(AtomicU64::new(0));
        let respond: Arc<Respond> = Arc::new(respond);
        let (seen, sent) = (heads.clone(), written.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, sent, respond) = (seen.clone(), sent.clone(), respond.clone());
                std::thread::spawn(move || serve(stream, &seen, &sent, &*respond));
            }
        });
        Self {
            port,
            heads,
            written,
        }
    }

    pub fn port(&self) -> u64 {
        u64::from(self.port)
    }

    /// Each request's head (request line and headers), in arrival order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }

    pub fn requests(&self) -> usize {
        self.heads.lock().expect("heads").len()
    }

    /// Body bytes written before the client stopped reading.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

fn serve(
    mut stream: TcpStream,
    heads: &Mutex<Vec<String>>,
    written: &AtomicU64,
    respond: &Respond,
) {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let nth = {
        let mut heads = heads.lock().expect("heads");
        heads.push(String::from_utf8_lossy(&head).into_owned());
        heads.len() - 1
    };
    behave(&mut stream, respond(nth), written);
}

fn behave(stream: &mut TcpStream, behaviour: Behaviour, written: &AtomicU64) {
    let mut buffer = [0_u8; 4096];
    match behaviour {
        Behaviour::Json(status, body) => {
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
        // Returns when the client closes the connection.
        Behaviour::Hang => while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {},
        Behaviour::Endless(framing, bytes) => endless(stream, framing, bytes, written),
        Behaviour::Slow(delay, then) => {
            std::thread::sleep(delay);
            behave(stream, *then, written);
        }
    }
}

fn endless(stream: &mut TcpStream, framing: Framing, bytes: usize, written: &AtomicU64) {
    let framing_header = match framing {
        Framing::Chunked => "transfer-encoding: chunked".to_owned(),
        Framing::CloseDelimited => "connection: close".to_owned(),
        Framing::Length => format!("content-length: {bytes}"),
    };
    let head =
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing_header}\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let piece = [b'a'; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(piece.len());
        let sent = if framing == Framing::Chunked {
            stream
                .write_all(format!("{n:x}\r\n").as_bytes())
                .and_then(|()| stream.write_all(&piece[..n]))
                .and_then(|()| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(&piece[..n])
        };
        if sent.is_err() {
            return;
        }
        written.fetch_add(n as u64, Ordering::SeqCst);
        left -= n;
    }
}
