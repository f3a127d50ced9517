//! A link with latency, jitter, loss and outages, for tests across network namespaces
//! (tests/common/netns.rs). This kernel has no `netem`, so the link is a userspace Ethernet
//! bridge: a namespace holding two interfaces, and for each direction a thread that reads the
//! frames arriving on one (a raw packet socket) and another that writes them out of the other
//! after the link's delay, unless the link drops them. Everything crossing it is impaired alike:
//! QUIC over UDP, the relay's TCP, ARP (ARP is never dropped, only delayed, so a lossy link
//! still resolves its neighbours). Frames keep their order; jitter varies the spacing only.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a link does to the frames crossing it, in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// One-way delay (the round trip is twice this).
    pub delay: Duration,
    /// Up to this much more delay, drawn per frame.
    pub jitter: Duration,
    /// Fraction of IP frames dropped, 0.0 to 1.0.
    pub loss: f64,
    /// The link is cut: every frame is dropped.
    pub down: bool,
}

impl Impairment {
    /// A link with `rtt` of round trip and `loss` (a fraction) of frames lost.
    pub fn rtt_loss(rtt: Duration, loss: f64) -> Self {
        Impairment {
            delay: rtt / 2,
            jitter: Duration::ZERO,
            loss,
            down: false,
        }
    }
}

/// A running impaired link between two interfaces of the namespace it was made in; stops when
/// dropped.
pub struct Link {
    settings: Arc<Mutex<Impairment>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Link {
    /// Bridge interfaces `a` and `b` of network namespace `netns` (by name, as `ip netns`
    /// knows it), passing frames unimpaired until [`Link::set`] says otherwise.
    pub fn bridge(netns: &str, a: &str, b: &str) -> std::io::Result<Link> {
        let (sa, sb) = in_netns(netns, || Ok((raw_socket(a)?, raw_socket(b)?)))?;
        let (sa, sb) = (Arc::new(sa), Arc::new(sb));
        let settings = Arc::new(Mutex::new(Impairment::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to, seed) in [(sa.clone(), sb.clone(), 1), (sb, sa, 2)] {
            let (tx, rx) = channel();
            let (s, st) = (settings.clone(), stop.clone());
            threads.push(std::thread::spawn(move || read_frames(&from, &tx, &s, &st, seed)));
            let st = stop.clone();
            threads.push(std::thread::spawn(move || write_frames(&to, &rx, &st)));
        }
        Ok(Link {
            settings,
            stop,
            threads,
        })
    }

    /// Impair the link from now on.
    pub fn set(&self, impairment: Impairment) {
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = impairment;
    }

    /// How the link is impaired now.
    pub fn get(&self) -> Impairment {
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cut the link, or restore it, keeping its other impairments.
    pub fn set_down(&self, down: bool) {
        let mut s = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        s.down = down;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A frame and when it may leave.
type Timed = (Instant, Vec<u8>);

/// Read frames from `from`, drop or schedule each as the settings say.
fn read_frames(from: &OwnedFd, to: &Sender<Timed>, settings: &Mutex<Impairment>, stop: &AtomicBool, seed: u64) {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ seed);
    let mut last = Instant::now();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = recv(from, &mut buf) else { continue };
        let s = *settings.lock().unwrap_or_else(PoisonError::into_inner);
        let is_ip = n >= 14 && matches!((buf[12], buf[13]), (0x08, 0x00) | (0x86, 0xdd));
        if s.down || (is_ip && rng.chance(s.loss)) {
            continue;
        }
        let extra = s.jitter.mul_f64(rng.unit());
        // Never before an earlier frame: jitter spaces frames out, it does not reorder them.
        let at = (Instant::now() + s.delay + extra).max(last);
        last = at;
        if to.send((at, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// Write each scheduled frame to `to` when its time comes.
fn write_frames(to: &OwnedFd, frames: &Receiver<Timed>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let (at, frame) = match frames.recv_timeout(Duration::from_millis(100)) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        // SAFETY: sends `frame.len()` bytes from a live buffer on an open socket.
        unsafe { libc::send(to.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    }
}

/// One frame into `buf`, or None after the socket's read timeout.
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: reads at most `buf.len()` bytes into a live buffer from an open socket.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).ok().filter(|n| *n > 0)
}

/// A raw packet socket on interface `ifname` (of the calling thread's namespace) that reads
/// every frame arriving there, not those it sends, waking every 100 ms to check for a stop.
fn raw_socket(ifname: &str) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(ifname).map_err(std::io::Error::other)?;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain system calls on a socket this function owns; every struct is initialized.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        if libc::bind(fd.as_raw_fd(), (&raw const sll).cast(), len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32)?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &(4i32 << 20))?;
        Ok(fd)
    }
}

fn set_opt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    let len = std::mem::size_of::<T>() as u32;
    // SAFETY: `value` is a live `T` of `len` bytes.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Run `f` on a thread that has entered network namespace `netns`; sockets it opens stay in
/// that namespace wherever they are used afterwards.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> std::io::Result<T> + Send) -> std::io::Result<T> {
    let path = format!("/var/run/netns/{netns}");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let ns = std::fs::File::open(&path)?;
                // SAFETY: moves only this thread into the namespace the open file names.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                f()
            })
            .join()
            .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
    })
}

/// A small deterministic generator: which frames a lossy link drops, reproducibly.
struct XorShift(u64);

impl XorShift {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}
