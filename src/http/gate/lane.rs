//! A lane: one private connection to tiny_http and the requests it carries, in order.
//!
//! The gate writes each request's rewritten head on a lane (HTTP/1.1 without a
//! `Connection` header, so tiny_http keeps the connection; the workers give every
//! response its length and no chunking threshold, so tiny_http always answers with a
//! `Content-Length`, never chunked) and reads the responses back in the order the
//! requests went in; tiny_http's in-order writer guarantees that order.
//!
//! **Why several requests share a lane.** Every lane is a tiny_http connection thread,
//! and every time a lane's socket goes from empty to readable that thread wakes. With one
//! request per lane, each request cost a wake of a connection thread besides the wake
//! of a worker, and context switches were most of the CPU time under `wrk -c64` on two
//! CPUs. Requests that are ready together (one pass of the gate's loop) go down a lane
//! in one write, are parsed by one wake of its thread, and their responses come back in
//! as few reads as they were written in. The gate fills a busy lane before it wakes
//! another (see `Gate::dispatch`), and the worker that has the turn (see
//! `http::request::work`) answers every shared lane's requests itself, in the order
//! tiny_http queued them, so no response waits for another worker's.
//!
//! **Why only quick requests share a lane.** A response waits for every earlier one on
//! its lane, and a worker holding a later response waits for the earlier one to be
//! written. Sharing a lane is safe only between requests whose handlers never wait for
//! anything: the built-in routes (the `/synthetic` delay is held in the gate, before
//! the request enters a lane). A request for an embedder's route, or a scrape of the
//! metrics (its time grows with the registry), travels alone on an exclusive lane, so
//! the pipelined `/synthetic` wedge of the old design, where a sleeping worker held
//! tiny_http's in-order writer, cannot happen: nothing that sleeps shares a lane.
//!
//! The gate always reads what tiny_http writes, so no worker blocks on a write for
//! long: a lane's responses are read as they arrive, whether or not their clients
//! are still there (a response owed to a client that has gone is read and dropped).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::poll;
use super::response::{Framed, MAX_RESPONSE, frame};
use crate::http::protocol::encode::PROBE;

/// The most requests a lane carries at once. One worker answers every shared lane's
/// requests in turn, so spreading a pass's requests over more lanes buys no
/// parallelism, only more wakes of tiny_http's threads: the depth is as large as the
/// requests in flight of a busy server, and bounds what one lane holds in the gate and
/// in tiny_http (a few hundred bytes a request). Measured in docs/performance.md
/// ("A turn for the workers").
pub const DEPTH: usize = 64;

/// A response a lane owes.
#[derive(Debug)]
struct Owed {
    /// The client connection waiting for it; `None` once that client has gone, and
    /// for the probe.
    client: Option<usize>,
    /// The answer to the lane's probe (see [`Lane::opened`]).
    probe: bool,
    /// The response to a HEAD request has no body, whatever its `Content-Length`.
    head_method: bool,
}

/// What a lane's socket said when it was pumped.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Still usable.
    Open,
    /// tiny_http closed the connection or it broke: the lane is done, and every
    /// response still owed is lost.
    Broken,
}

/// A private connection and the requests in flight on it.
pub struct Lane {
    fd: OwnedFd,
    out: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    owed: VecDeque<Owed>,
    /// Carries a request that must travel alone (see the module documentation).
    exclusive: bool,
    /// The probe has not been answered yet.
    pub fresh: bool,
}

impl Lane {
    /// A lane over the private connection `fd`, just opened: its first request is the
    /// probe ([`PROBE`]), whose answer shows that tiny_http's thread for the lane is
    /// running ([`Lane::fresh`] is true until then). It goes out with the first
    /// [`Lane::send`]; requests pushed meanwhile follow it.
    pub fn opened(fd: OwnedFd) -> Lane {
        let mut lane = Lane {
            fd,
            out: PROBE.to_vec(),
            sent: 0,
            input: Vec::new(),
            owed: VecDeque::new(),
            exclusive: false,
            fresh: true,
        };
        lane.owed.push_back(Owed {
            client: None,
            probe: true,
            head_method: false,
        });
        lane
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// How many responses the lane owes.
    pub fn depth(&self) -> usize {
        self.owed.len()
    }

    /// Whether a request that may share a lane can go down this one now.
    pub fn takes_shared(&self) -> bool {
        self.owed.is_empty() || (!self.exclusive && self.owed.len() < DEPTH)
    }

    /// Queues `request` (head and body) for `client`; `shared` when it may share the
    /// lane with others. The bytes go out at the next [`Lane::send`].
    pub fn push(&mut self, request: &[u8], head_method: bool, client: usize, shared: bool) {
        if self.owed.iter().all(|o| o.probe) {
            self.exclusive = !shared;
        }
        self.out.extend_from_slice(request);
        self.owed.push_back(Owed {
            client: Some(client),
            probe: false,
            head_method,
        });
    }

    /// Forgets `client` (it has gone): its response will be read and dropped.
    pub fn forget(&mut self, client: usize) {
        for owed in &mut self.owed {
            if owed.client == Some(client) {
                owed.client = None;
            }
        }
    }

    /// The clients still waiting for a response of this lane.
    pub fn clients(&self) -> impl Iterator<Item = usize> + '_ {
        self.owed.iter().filter_map(|o| o.client)
    }

    /// Writes what it can of the queued requests.
    ///
    /// This does not try a read as well: a response cannot be there yet, so the read
    /// would only return `EAGAIN`, a wasted system call per write (docs/performance.md,
    /// "A relay starts with a write only"). The lane is registered edge-triggered, and
    /// every arrival of response bytes raises an edge, so the read happens when
    /// [`Lane::pump`] is called for it.
    pub fn send(&mut self) -> State {
        while self.sent < self.out.len() {
            match poll::send(self.fd(), &self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return State::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return State::Broken,
            }
        }
        self.out.clear();
        self.sent = 0;
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        State::Open
    }

    /// Writes what it can, then reads what it can. Each complete response is passed
    /// to `answer` with the client it is owed to (`None` if that client has gone), in
    /// request order, as the bytes tiny_http wrote and their [`Framed`] reading: read
    /// once, and borrowed from the read buffer (only a response's incomplete tail is
    /// copied, to wait in the lane for the rest).
    pub fn pump(&mut self, scratch: &mut [u8], answer: &mut Answer) -> State {
        if self.send() == State::Broken {
            return State::Broken;
        }
        loop {
            // SAFETY: the pointer and length describe the live buffer `scratch`.
            let n = unsafe { libc::read(self.fd(), scratch.as_mut_ptr().cast(), scratch.len()) };
            if n > 0 {
                let read = &scratch[..n as usize];
                let taken = if self.input.is_empty() {
                    let taken = take(&mut self.owed, &mut self.fresh, read, answer);
                    if let Ok(used) = taken {
                        self.input.extend_from_slice(&read[used..]);
                    }
                    taken
                } else {
                    self.input.extend_from_slice(read);
                    let taken = take(&mut self.owed, &mut self.fresh, &self.input, answer);
                    if let Ok(used) = taken {
                        self.input.drain(..used);
                    }
                    taken
                };
                if taken.is_err() {
                    return State::Broken;
                }
                if self.input.is_empty() && self.input.capacity() > 64 * 1024 {
                    self.input = Vec::new();
                }
                if (n as usize) < scratch.len() {
                    // A short read of a stream socket took all there was: bytes that
                    // arrive later raise a new edge, so no read to `EAGAIN` is needed.
                    return State::Open;
                }
                continue;
            }
            if n == 0 {
                return State::Broken;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return State::Open,
                io::ErrorKind::Interrupted => {}
                _ => return State::Broken,
            }
        }
    }
}

/// What receives a lane's complete responses (see [`Lane::pump`]).
pub type Answer<'a> = dyn FnMut(Option<usize>, &[u8], &Framed) + 'a;

/// Passes every complete response at the front of `bytes` to `answer`: how many bytes
/// they took, or an error when the bytes cannot be a response the lane owes.
fn take(
    owed: &mut VecDeque<Owed>,
    fresh: &mut bool,
    bytes: &[u8],
    answer: &mut Answer,
) -> Result<usize, ()> {
    let mut start = 0;
    loop {
        let rest = &bytes[start..];
        if rest.is_empty() {
            return Ok(start);
        }
        let Some(front) = owed.front() else {
            return Err(()); // bytes nobody asked for
        };
        match frame(rest, front.head_method) {
            None if rest.len() > MAX_RESPONSE => return Err(()),
            None => return Ok(start),
            Some(Err(())) => return Err(()),
            Some(Ok(framed)) if framed.len > MAX_RESPONSE => return Err(()),
            Some(Ok(framed)) if rest.len() < framed.len => return Ok(start),
            Some(Ok(framed)) => {
                let done = owed.pop_front().expect("checked above");
                *fresh &= !done.probe;
                answer(done.client, &rest[..framed.len], &framed);
                start += framed.len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn pair() -> (Lane, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Lane::opened(OwnedFd::from(ours)), theirs)
    }

    #[test]
    fn responses_come_back_in_request_order_with_their_clients() {
        let (mut lane, mut tiny) = pair();
        lane.push(b"GET /a HTTP/1.0\r\n\r\n", false, 7, true);
        lane.push(b"HEAD /b HTTP/1.0\r\n\r\n", true, 9, true);
        assert!(lane.takes_shared());
        assert_eq!(lane.send(), State::Open);
        let mut got = vec![0; 64];
        let expected = [PROBE, b"GET /a HTTP/1.0\r\n\r\nHEAD /b HTTP/1.0\r\n\r\n"].concat();
        tiny.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut sent = Vec::new();
        while sent.len() < expected.len() {
            let n = tiny.read(&mut got).unwrap();
            sent.extend_from_slice(&got[..n]);
        }
        assert_eq!(sent, expected);
        lane.forget(9);
        assert!(lane.fresh);
        // The probe's answer, then the first response in two pieces, the second
        // (HEAD: no body) with it.
        tiny.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        tiny.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\no")
            .unwrap();
        let mut answers = Vec::new();
        let mut scratch = vec![0; 256];
        let mut record = |c: Option<usize>, r: &[u8], _: &Framed| answers.push((c, r.to_vec()));
        assert_eq!(lane.pump(&mut scratch, &mut record), State::Open);
        tiny.write_all(b"kHTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        assert_eq!(lane.pump(&mut scratch, &mut record), State::Open);
        assert_eq!(
            answers,
            vec![
                (
                    None,
                    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
                ),
                (
                    Some(7),
                    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
                ),
                (
                    None,
                    b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()
                ),
            ]
        );
        assert_eq!(lane.depth(), 0);
        assert!(!lane.fresh);
        // A response read whole is handed over from the read buffer, and the lane
        // reads on from an empty input.
        for round in 0..2 {
            lane.push(b"GET /c HTTP/1.0\r\n\r\n", false, 11, true);
            assert_eq!(lane.send(), State::Open);
            let body = format!("round {round}");
            let response = format!("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n{body}");
            tiny.write_all(response.as_bytes()).unwrap();
            let mut whole = Vec::new();
            let mut take = |c: Option<usize>, r: &[u8], _: &Framed| whole.push((c, r.to_vec()));
            assert_eq!(lane.pump(&mut scratch, &mut take), State::Open);
            assert_eq!(whole, vec![(Some(11), response.into_bytes())]);
            assert_eq!(lane.depth(), 0);
        }
    }

    #[test]
    fn an_exclusive_request_takes_no_company_and_stray_bytes_break_the_lane() {
        let (mut lane, mut tiny) = pair();
        lane.push(b"GET /custom HTTP/1.0\r\n\r\n", false, 1, false);
        assert!(!lane.takes_shared());
        assert_eq!(lane.clients().collect::<Vec<_>>(), vec![1]);
        let answer = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        tiny.write_all(&[&answer[..], answer, b"extra"].concat())
            .unwrap();
        let mut scratch = vec![0; 64];
        let mut n = 0;
        let state = lane.pump(&mut scratch, &mut |_, _, _| n += 1);
        assert_eq!((state, n), (State::Broken, 2));
    }

    #[test]
    fn a_closed_connection_breaks_the_lane() {
        let (mut lane, tiny) = pair();
        assert_eq!(lane.depth(), 1, "the probe");
        lane.push(b"GET /up HTTP/1.0\r\n\r\n", false, 3, true);
        drop(tiny);
        let mut scratch = vec![0; 64];
        assert_eq!(lane.pump(&mut scratch, &mut |_, _, _| {}), State::Broken);
        assert_eq!(lane.clients().collect::<Vec<_>>(), vec![3]);
    }
}
