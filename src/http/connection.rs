//! One client connection's clock. A connection may wait for its next request only so long (the
//! keep-alive timeout), and a request's head, once it has begun (on a new connection, from the
//! start), may take only so long to arrive (the header-read timeout): a client that trickles
//! its headers a byte at a time, or opens connections and sends nothing, cannot hold them for
//! ever. Past either, the connection is closed.
//!
//! hyper's own header timer starts whenever it waits for a request, so it would count a kept-
//! alive connection's idle time against the next request's head; the two are kept apart here,
//! as nginx keeps `keepalive_timeout` and `client_header_timeout`. While a request is being
//! answered neither runs: the request timeout (`http::service`) bounds that.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may wait, by what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// From a new connection, or the first byte of a later request, to its head's end.
    pub header_read: Duration,
    /// From an answer to the first byte of the next request.
    pub keep_alive: Duration,
}

/// Whether a request is being answered, and how many were: kept by the service, read by the
/// stream, so that neither timeout runs while a request is answered, and the keep-alive
/// timeout runs from an answer, even one the stream was not polled during.
#[derive(Clone, Debug, Default)]
pub struct Answering(Arc<AnsweringState>);

#[derive(Debug, Default)]
pub struct AnsweringState {
    begun: AtomicU64,
    now: AtomicBool,
}

impl Answering {
    /// Marks a request as being answered until the guard is dropped (the answer is ready).
    pub fn begin(&self) -> AnsweringGuard {
        self.0.begun.fetch_add(1, Ordering::Relaxed);
        self.0.now.store(true, Ordering::Relaxed);
        AnsweringGuard(self.0.clone())
    }
}

pub struct AnsweringGuard(Arc<AnsweringState>);

/// Marks a response whose body goes on after its head (a change stream): its request counts
/// as being answered until the body ends, so that neither timeout cuts it off.
#[derive(Clone, Copy, Debug)]
pub struct Streaming;

/// A streaming response's body, holding its request's [`AnsweringGuard`] until it ends.
pub struct StreamingBody<B> {
    pub body: B,
    pub _answering: AnsweringGuard,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for StreamingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

impl Drop for AnsweringGuard {
    fn drop(&mut self) {
        self.0.now.store(false, Ordering::Relaxed);
    }
}

/// What the connection is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request's head, since this instant.
    Head(Instant),
    /// The next request, since the last answer.
    Idle(Instant),
    /// Nothing: a request is being answered.
    Answering,
}

/// A stream that fails with [`io::ErrorKind::TimedOut`] once the phase it is in has lasted
/// too long. The timeouts are checked only while a read or a write waits, so they cost nothing
/// while data flows.
pub struct TimedStream<S> {
    inner: S,
    timeouts: ConnectionTimeouts,
    answering: Answering,
    /// How many requests had begun when the phase was last set.
    begun: u64,
    phase: Phase,
    /// Set to the current phase's deadline while a read or write waits.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedStream<S> {
    /// A new connection: waiting for its first request's head from now.
    pub fn new(inner: S, timeouts: ConnectionTimeouts, answering: Answering) -> Self {
        Self {
            inner,
            timeouts,
            answering,
            begun: 0,
            phase: Phase::Head(Instant::now()),
            timer: None,
        }
    }

    /// Moves to the phase the service says, before any read or write: answering while it
    /// answers, idle once an answer is ready. Says whether the connection just went idle.
    fn update_phase(&mut self) -> bool {
        let state = &self.answering.0;
        let now = state.now.load(Ordering::Relaxed);
        let begun = state.begun.load(Ordering::Relaxed);
        let mut went_idle = false;
        if now {
            self.phase = Phase::Answering;
        } else if begun != self.begun || self.phase == Phase::Answering {
            self.phase = Phase::Idle(Instant::now());
            went_idle = true;
        }
        self.begun = begun;
        went_idle
    }

    /// Before a write: once an answer is ready, the keep-alive timeout starts, and the task
    /// must be woken at its end even if no read is waiting then (hyper may have polled its
    /// last read while the answer was being made, when no deadline ran).
    fn before_write(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.update_phase() {
            self.check_deadline(cx)?;
        }
        Ok(())
    }

    /// While an operation waits: fails once the phase's deadline has passed, else makes sure
    /// the task is woken by then.
    ///
    /// The timer is moved only to an earlier deadline. A later one (each answer pushes the
    /// keep-alive deadline on) leaves it where it is: when it fires early, it is set again to
    /// the deadline then in force. So a connection answering request after request moves no
    /// timer per request, only about once a keep-alive timeout.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let deadline = match self.phase {
            Phase::Head(since) => since + self.timeouts.header_read,
            Phase::Idle(since) => since + self.timeouts.keep_alive,
            Phase::Answering => return Ok(()),
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    match self.phase {
                        Phase::Idle(_) => "the connection was idle too long",
                        _ => "the request's head took too long to arrive",
                    },
                ));
            }
            timer.as_mut().reset(deadline);
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.update_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // The first bytes of the next request start its head's clock.
                if let Phase::Idle(_) = this.phase
                    && buf.filled().len() > before
                {
                    this.phase = Phase::Head(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                this.check_deadline(cx)?;
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.before_write(cx)?;
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        if written.is_pending() {
            // A client that does not read its answers holds the connection no longer than
            // one that sends nothing.
            this.check_deadline(cx)?;
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.before_write(cx)?;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        if written.is_pending() {
            this.check_deadline(cx)?;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = ready!(Pin::new(&mut this.inner).poll_flush(cx));
        Poll::Ready(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUTS: ConnectionTimeouts = ConnectionTimeouts {
        header_read: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
    };

    fn kind(result: io::Result<usize>) -> Option<io::ErrorKind> {
        result.err().map(|e| e.kind())
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_ends_times_out_from_the_connection_s_start() {
        let (client, server) = tokio::io::duplex(64);
        let mut stream = TimedStream::new(server, TIMEOUTS, Answering::default());
        let mut client = client;
        let trickle = tokio::spawn(async move {
            // A byte every five seconds: each read succeeds, yet the head never ends.
            loop {
                if client.write_all(b"G").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        let started = Instant::now();
        let mut buffer = [0u8; 16];
        let failed = loop {
            match stream.read(&mut buffer).await {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        assert_eq!(failed.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_waits_the_keep_alive_timeout_then_a_new_head_its_own() {
        let (mut client, server) = tokio::io::duplex(64);
        let answering = Answering::default();
        let mut stream = TimedStream::new(server, TIMEOUTS, answering.clone());
        let mut buffer = [0u8; 16];
        client.write_all(b"GET").await.unwrap();
        assert_eq!(stream.read(&mut buffer).await.unwrap(), 3);
        // A request answered, well past the header-read timeout: that time does not count.
        let guard = answering.begin();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(guard);
        stream.write_all(b"answer").await.unwrap();

        // Idle for 59 seconds, then the next request begins: it is read.
        let read = tokio::spawn(async move {
            let mut buffer = [0u8; 16];
            let first = stream.read(&mut buffer).await;
            let second = stream.read(&mut buffer).await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_secs(59)).await;
        client.write_all(b"POST").await.unwrap();
        let started = Instant::now();
        let (first, second) = read.await.unwrap();
        assert_eq!(first.unwrap(), 4);
        // ...and then its head has the header-read timeout from its first byte.
        assert_eq!(kind(second), Some(io::ErrorKind::TimedOut));
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
    }

    /// hyper may poll its last read while a request is answered, and then write the answer and
    /// read no more until woken: the write itself must set the wake-up at the keep-alive
    /// timeout.
    #[tokio::test(start_paused = true)]
    async fn writing_an_answer_sets_a_wake_up_at_the_keep_alive_timeout() {
        struct Counted(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Counted {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (_client, server) = tokio::io::duplex(64);
        let answering = Answering::default();
        let mut stream = TimedStream::new(server, TIMEOUTS, answering.clone());
        drop(answering.begin());
        let woken = Arc::new(Counted(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let written = Pin::new(&mut stream).poll_write(&mut cx, b"answer");
        assert!(matches!(written, Poll::Ready(Ok(6))));
        tokio::time::advance(TIMEOUTS.keep_alive - Duration::from_secs(1)).await;
        assert_eq!(woken.0.load(Ordering::Relaxed), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_past_the_keep_alive_timeout_is_closed() {
        let (_client, server) = tokio::io::duplex(64);
        let answering = Answering::default();
        let mut stream = TimedStream::new(server, TIMEOUTS, answering.clone());
        drop(answering.begin());
        // The phase moves to Idle on the first read after the answer.
        let started = Instant::now();
        let mut buffer = [0u8; 16];
        assert_eq!(
            kind(stream.read(&mut buffer).await),
            Some(io::ErrorKind::TimedOut)
        );
        assert_eq!(started.elapsed(), TIMEOUTS.keep_alive);
    }
}
