//! A TCP proxy in front of RabbitMQ that can simulate an outage: `cut()` drops every proxied
//! connection and refuses new ones until `restore()`. That is a broker restart as the client
//! sees it, with a window in which the test can change the broker behind the client's back.
//! `freeze()` simulates a hung broker instead: the open connections stay open but nothing
//! passes any more, while new connections work.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    /// Bumped by `cut()`; every pump watches it and drops its sockets.
    cuts: watch::Sender<u64>,
    /// Bumped by `freeze()`; every pump open then stops copying but keeps its sockets.
    freezes: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0);
        let (freezes, _) = watch::channel(0);
        let accept = tokio::spawn({
            let down = down.clone();
            let cuts = cuts.clone();
            let freezes = freezes.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection reset
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    tokio::spawn(pipe(client, server, cuts.subscribe(), freezes.subscribe()));
                }
            }
        });
        Ok(Self {
            addr,
            down,
            cuts,
            freezes,
            accept,
        })
    }

    pub fn freeze(&self) {
        self.freezes.send_modify(|n| *n += 1);
    }

    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cuts.send_modify(|n| *n += 1);
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mut cut: watch::Receiver<u64>,
    mut freeze: watch::Receiver<u64>,
) {
    tokio::select! {
        _ = pump(&client, &server) => {}
        _ = pump(&server, &client) => {}
        _ = cut.changed() => {}
        _ = freeze.changed() => {
            // Silent but open, like a hung broker, until the proxy goes.
            let _ = cut.changed().await;
        }
    }
    // Both sockets drop here.
}

/// Copies bytes one way until EOF or an error. (tokio's `io-util` copy helpers are not in
/// this workspace's feature set; the readiness API is.)
async fn pump(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut written = 0;
        while written < n {
            to.writable().await?;
            match to.try_write(&buf[written..n]) {
                Ok(k) => written += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Splits `amqp://user:pass@host:port/vhost` into (`amqp://user:pass@`, `host:port`,
/// `/vhost`), so the host part can be pointed at the proxy.
pub fn split_amqp_url(url: &str) -> Option<(String, String, String)> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let mut host = authority[host_start..].to_string();
    if !host.contains(':') {
        host.push_str(":5672");
    }
    Some((
        url[..scheme_end + host_start].to_string(),
        host,
        rest[authority_end..].to_string(),
    ))
}
