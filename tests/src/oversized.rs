//! A local extension whose answer never ends: a raw TCP stand-in (an HTTP server would not
//! send a body of this size without being asked to stream it) that serves any path, secret,
//! parameter or AppConfig configuration alike, with a body of `bytes` bytes and no
//! `Content-Length`. Like the real extensions it answers only once the function's INIT is
//! over; before then, 400 "not ready to serve traffic".

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::stand_ins::read_head;

/// How the body's end is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`, in 64 KiB chunks.
    Chunked,
    /// Neither a length nor chunks: the body ends when the connection closes (RFC 9112,
    /// section 6.3, the last rule).
    CloseDelimited,
}

/// What one write carries.
const PIECE: usize = 64 * 1024;

pub struct OversizedExtension {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    written: Arc<AtomicU64>,
}

impl OversizedExtension {
    pub async fn start(framing: Framing, bytes: usize, invoking: watch::Receiver<bool>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (counted, sent) = (requests.clone(), written.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let ready = *invoking.borrow();
                let (counted, sent) = (counted.clone(), sent.clone());
                tokio::spawn(async move {
                    serve(stream, ready, framing, bytes, &counted, &sent).await;
                });
            }
        });
        Self {
            addr,
            requests,
            written,
        }
    }

    /// For `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` or `AWS_APPCONFIG_EXTENSION_HTTP_PORT`.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Requests answered with the oversized body.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes the function let it write before it stopped reading.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    ready: bool,
    framing: Framing,
    bytes: usize,
    requests: &AtomicUsize,
    written: &AtomicU64,
) {
    if read_head(&mut stream).await.is_none() {
        return;
    }
    if !ready {
        let body = r#"{"message": "not ready to serve traffic, please wait"}"#;
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let framing_header = match framing {
        Framing::Chunked => "transfer-encoding: chunked\r\n",
        Framing::CloseDelimited => "connection: close\r\n",
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconfiguration-version: 1\r\n{framing_header}\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // JSON that opens a string and never closes it, as a runaway secret or document would.
    let mut piece = vec![b'a'; PIECE];
    piece[..17].copy_from_slice(br#"{"SecretString":""#);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(PIECE);
        let sent = match framing {
            Framing::Chunked => {
                let mut chunk = format!("{n:x}\r\n").into_bytes();
                chunk.extend_from_slice(&piece[..n]);
                chunk.extend_from_slice(b"\r\n");
                stream.write_all(&chunk).await
            }
            Framing::CloseDelimited => stream.write_all(&piece[..n]).await,
        };
        // The function stopped reading and closed the connection: as it should.
        if sent.is_err() {
            return;
        }
        written.fetch_add(n as u64, Ordering::SeqCst);
        piece[..17].fill(b'a');
        left -= n;
    }
    if framing == Framing::Chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let _ = stream.shutdown().await;
}
