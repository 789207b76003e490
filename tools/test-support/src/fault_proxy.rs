//! A loopback TCP proxy that fails the way networks do: flows that go silent without a FIN or RST
//! (a NAT or load balancer forgetting them, a thawed Lambda environment whose peer is gone), and a
//! server that accepts connections and never answers. Closing sockets is the easy failure; this is
//! the other one. It can also hold what clients send for a while, to stop a client at a chosen point
//! of its work (a slow computation, a store that lands late) and let it go on later. And it can be a
//! network that is merely far away: a fixed one-way delay on every packet ([`FaultProxy::set_delay`]),
//! counting the round trips ("flights") clients make ([`FaultProxy::flights`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything is forwarded (flows silenced earlier stay silent, as a forgotten flow does), held
    /// data included.
    Healed,
    /// Every flow open now stops forwarding in both directions, sockets kept open; new flows pass.
    DropExisting,
    /// Connections are accepted and nothing is ever forwarded: a wedged server.
    Wedged,
    /// What clients send, on every flow old or new, is held (sockets open, nothing lost) until
    /// [`Mode::Healed`], then forwarded in order: a client stopped in the middle of its work.
    Held,
}

struct Shared {
    upstream: SocketAddr,
    /// Flows numbered below this are silenced for good.
    silenced_below: AtomicU64,
    next_flow: AtomicU64,
    wedged: AtomicBool,
    /// Chunks read from clients and forwarded to the server: one per request a client sent without
    /// waiting (a pipeline is one), so the count of round trips a client started.
    client_sends: AtomicU64,
    /// Whether client data is being held ([`Mode::Held`]).
    held: tokio::sync::watch::Sender<bool>,
    /// Chunks that arrived from clients while held.
    held_sends: AtomicU64,
    /// One-way delay of every chunk, in microseconds.
    delay_us: AtomicU64,
    /// Client sends that followed an answer on their flow (or opened it): round trips.
    flights: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn silenced(&self, flow: u64) -> bool {
        flow < self.silenced_below.load(Ordering::SeqCst) || self.wedged.load(Ordering::SeqCst)
    }

    fn track(&self, handle: AbortHandle) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle);
        }
    }
}

/// Stops (and closes every socket) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            silenced_below: AtomicU64::new(0),
            next_flow: AtomicU64::new(0),
            wedged: AtomicBool::new(false),
            client_sends: AtomicU64::new(0),
            held: tokio::sync::watch::Sender::new(false),
            held_sends: AtomicU64::new(0),
            delay_us: AtomicU64::new(0),
            flights: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        shared.track(accept.abort_handle());
        Self { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: Mode) {
        match mode {
            Mode::Healed => {
                self.shared.wedged.store(false, Ordering::SeqCst);
                self.shared.held.send_replace(false);
            }
            Mode::DropExisting => {
                let next = self.shared.next_flow.load(Ordering::SeqCst);
                self.shared.silenced_below.store(next, Ordering::SeqCst);
            }
            Mode::Wedged => self.shared.wedged.store(true, Ordering::SeqCst),
            Mode::Held => {
                self.shared.held.send_replace(true);
            }
        }
    }

    /// Chunks clients have sent so far (see `Shared::client_sends`): with one request at a time and a
    /// loopback network, the number of round trips.
    pub fn client_sends(&self) -> u64 {
        self.shared.client_sends.load(Ordering::SeqCst)
    }

    /// Chunks clients sent while [`Mode::Held`] (held, or forwarded since): a client that has sent
    /// one has reached the point the test stopped it at.
    pub fn held_sends(&self) -> u64 {
        self.shared.held_sends.load(Ordering::SeqCst)
    }

    /// Waits until a client has sent something while held (see [`FaultProxy::held_sends`]).
    pub async fn until_held(&self) {
        while self.held_sends() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Delays every chunk by `one_way` in each direction from now on (a link `2 × one_way` round trip
    /// long); chunks keep their order and a pipeline still travels as one.
    pub fn set_delay(&self, one_way: Duration) {
        self.shared
            .delay_us
            .store(one_way.as_micros() as u64, Ordering::SeqCst);
    }

    /// Round trips clients started so far: a send on a flow that opens it or follows an answer on it
    /// (a request split over several packets, or pipelined, counts once).
    pub fn flights(&self) -> u64 {
        self.shared.flights.load(Ordering::SeqCst)
    }

    /// Flows accepted so far.
    pub fn flows(&self) -> u64 {
        self.shared.next_flow.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Ok(tasks) = self.shared.tasks.lock() {
            tasks.iter().for_each(AbortHandle::abort);
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let flow = shared.next_flow.fetch_add(1, Ordering::SeqCst);
        let task = tokio::spawn(serve_flow(client, flow, shared.clone()));
        shared.track(task.abort_handle());
    }
}

async fn serve_flow(client: TcpStream, flow: u64, shared: Arc<Shared>) {
    if shared.wedged.load(Ordering::SeqCst) {
        // Accepted, never answered: hold the socket until the proxy stops.
        return hold(client).await;
    }
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Whether the server spoke since the client last did: the client's next send is a new flight.
    let answered = AtomicBool::new(true);
    let up = pump(
        &mut client_read,
        &mut server_write,
        flow,
        &shared,
        &answered,
        true,
    );
    let down = pump(
        &mut server_read,
        &mut client_write,
        flow,
        &shared,
        &answered,
        false,
    );
    tokio::join!(up, down);
    // A silenced flow keeps both sockets open: the peer sees silence, not a close.
    if shared.silenced(flow) {
        hold((client_read, client_write, server_read, server_write)).await;
    }
}

/// Keeps `sockets` open until the proxy stops (which aborts this task).
async fn hold<T>(sockets: T) {
    std::future::pending::<()>().await;
    drop(sockets);
}

/// Copies `from` to `to` until either closes or the flow is silenced; data read after the flow was
/// silenced is dropped, as the network would. Each chunk arrives the set delay after it was read.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    flow: u64,
    shared: &Shared,
    answered: &AtomicBool,
    from_client: bool,
) where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let (link, mut arriving) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    // Whether `from` closed (passed on), rather than the flow being silenced (not passed on).
    let closed = AtomicBool::new(false);
    let read = async {
        let link = link;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(n) => n,
            };
            if shared.silenced(flow) {
                return;
            }
            if from_client {
                shared.client_sends.fetch_add(1, Ordering::SeqCst);
                if answered.swap(false, Ordering::SeqCst) {
                    shared.flights.fetch_add(1, Ordering::SeqCst);
                }
                let mut held = shared.held.subscribe();
                if *held.borrow_and_update() {
                    shared.held_sends.fetch_add(1, Ordering::SeqCst);
                    if held.wait_for(|held| !held).await.is_err() {
                        return;
                    }
                }
            } else {
                answered.store(true, Ordering::SeqCst);
            }
            let delay = Duration::from_micros(shared.delay_us.load(Ordering::SeqCst));
            if link
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                return;
            }
        }
    };
    let write = async {
        while let Some((due, chunk)) = arriving.recv().await {
            wait_until(due).await;
            if shared.silenced(flow) || to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // `from` closed: pass the close on, so the other side ends its half too.
        if closed.load(Ordering::SeqCst) {
            let _ = to.shutdown().await;
        }
    };
    tokio::join!(read, write);
}

/// Waits until `due`, to within microseconds: tokio's timer ticks by the millisecond, which would turn
/// a 0.5 ms delay into about 1 ms (and a passed deadline into up to 1 ms). The timer for all but the
/// last 1.5 ms, then yielding until `due`.
async fn wait_until(due: tokio::time::Instant) {
    let coarse = Duration::from_micros(1_500);
    if let Some(early) = due.checked_sub(coarse) {
        if early > tokio::time::Instant::now() {
            tokio::time::sleep_until(early).await;
        }
    }
    while tokio::time::Instant::now() < due {
        tokio::task::yield_now().await;
    }
}
