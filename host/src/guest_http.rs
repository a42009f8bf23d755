//! Outbound HTTP for guests (`wasi:http/outgoing-handler`), off unless
//! the operator grants it: a component reaches only the destinations its
//! grants name ([`Grant`]), over a connection the one outbound connector
//! opened and checked ([`crate::egress`]), within its session's budgets
//! (requests per second, requests in flight, bytes), and never past the
//! call that made it. A [`Secret`] is added as a header by the host, on
//! requests to its one destination, after the guest has handed the
//! request over: the guest never holds it. Redirects are answers like
//! any other: the host does not follow them.
//!
//! Every refusal is an `error-code` inside the guest: not granted is
//! `HTTP-request-denied`, an address the policy refuses is
//! `destination-IP-prohibited`, a spent budget `connection-limit-reached`.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::budget::{Held, Kind, SessionBudget};
use crate::egress::{Outbound, OutboundError};
use crate::metrics::metrics;
use crate::rate::TokenBucket;

/// One destination a component may reach: a scheme, a host (or every
/// subdomain of one, `*.example.com`), and a port (the scheme's own when
/// the grant names none).
#[derive(Debug, Clone, Eq)]
pub struct Grant {
    tls: bool,
    host: HostPattern,
    port: u16,
    /// As the operator wrote it, for `validate` and the component list.
    written: String,
}

/// Two grants are the same when they allow the same requests, however
/// they were written.
impl PartialEq for Grant {
    fn eq(&self, other: &Grant) -> bool {
        (self.tls, &self.host, self.port) == (other.tls, &other.host, other.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Any name that ends in `.` and this suffix (not the suffix itself).
    Subdomains(String),
}

impl Grant {
    /// Parses `scheme://host[:port]` (no path, no user info).
    pub fn parse(text: &str) -> Result<Grant, String> {
        let bad = |why: &str| Err(format!("{text:?} is not a destination: {why}"));
        let Some((scheme, rest)) = text.split_once("://") else {
            return bad("write it as scheme://host[:port], e.g. https://api.example.com");
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return bad("the scheme must be http or https"),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return bad("only a host and an optional port may follow the scheme");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => match port.parse::<u16>() {
                Ok(port) if port > 0 => (host, port),
                _ => return bad("the port must be a number from 1 to 65535"),
            },
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let pattern = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostPattern::Subdomains(suffix.to_string())
            }
            _ if host.contains('*') => {
                return bad("a wildcard may only be a leading `*.` (every subdomain)");
            }
            _ if host.is_empty() => return bad("the host is empty"),
            _ => HostPattern::Exact(host),
        };
        Ok(Grant {
            tls,
            host: pattern,
            port,
            written: text.to_string(),
        })
    }

    /// Whether a request to `host:port` (`tls`: https) is granted.
    pub fn allows(&self, tls: bool, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).trim_end_matches('.');
        self.tls == tls
            && self.port == port
            && match &self.host {
                HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
                HostPattern::Subdomains(suffix) => {
                    host.len().checked_sub(suffix.len() + 1).is_some_and(|cut| {
                        host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(suffix)
                    })
                }
            }
    }

    /// The grant as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }
}

/// A value the host adds as a header to requests for one destination.
/// Its value never leaves the host in any other way: not in logs,
/// metrics, errors, or the printed config.
#[derive(Clone)]
pub struct Secret {
    /// The operator's name for it (shown; the value never is).
    pub name: String,
    pub header: HeaderName,
    value: HeaderValue,
    pub destination: Grant,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("destination", &self.destination.as_str())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// A secret named `name`, sent as `header: {prefix}{value}` to
    /// `destination`.
    pub fn new(
        name: &str,
        header: &str,
        prefix: &str,
        value: &str,
        destination: Grant,
    ) -> Result<Secret, String> {
        let header = HeaderName::try_from(header)
            .map_err(|_| format!("secret {name}: {header:?} is not a header name"))?;
        let mut value = HeaderValue::try_from(format!("{prefix}{}", value.trim_end()))
            .map_err(|_| format!("secret {name}: the value cannot be sent in a header"))?;
        value.set_sensitive(true);
        Ok(Secret {
            name: name.to_string(),
            header,
            value,
            destination,
        })
    }
}

/// Limits on each guest HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Longest a request may take, headers and body; never longer than
    /// what is left of the call that made it.
    pub request_timeout: Duration,
    /// Largest response body a guest may read, per request.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    /// The config's defaults (`outbound.request_timeout_ms`,
    /// `outbound.max_response_bytes`).
    fn default() -> Self {
        let outbound = crate::config::OutboundConfig::default();
        HttpLimits {
            request_timeout: Duration::from_millis(outbound.request_timeout_ms),
            max_response_bytes: outbound.max_response_bytes,
        }
    }
}

/// What one session's agents share of outbound HTTP: its budget (in
/// flight, bytes) and its request rate.
pub struct SessionHttp {
    outbound: Arc<Outbound>,
    budget: Arc<SessionBudget>,
    rate: Mutex<TokenBucket>,
    limits: HttpLimits,
}

impl SessionHttp {
    /// Outbound HTTP for the session of `budget`, at most
    /// `per_second` requests a second.
    pub fn new(
        outbound: Arc<Outbound>,
        budget: Arc<SessionBudget>,
        per_second: u32,
        limits: HttpLimits,
    ) -> Arc<Self> {
        Arc::new(SessionHttp {
            outbound,
            budget,
            rate: Mutex::new(TokenBucket::new(per_second)),
            limits,
        })
    }
}

/// Outbound HTTP for one agent: its session's share, its component's
/// grants and the secrets bound to them.
pub struct GuestHttp {
    pub session: Arc<SessionHttp>,
    pub component: Arc<str>,
    pub slot: u8,
    pub grants: Arc<[Grant]>,
    pub secrets: Arc<[Secret]>,
}

/// The sender `wasi:http` hands requests to, and the error it answers.
pub type SendResult = Result<(hyper::Response<WasiBody>, ConnectionDriver), HttpError>;

/// What keeps a response's connection going until its body is read.
pub type ConnectionDriver = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl GuestHttp {
    /// Sends `request` for the guest, due by `deadline` (the call's);
    /// `first_byte`, the guest's own limit on waiting for the answer's
    /// head, shortens that wait. Each request is counted and logged
    /// once: when it is refused or fails, or when its answer's body has
    /// been read or dropped.
    pub async fn send(
        self: Arc<Self>,
        mut request: hyper::Request<WasiBody>,
        deadline: Instant,
        first_byte: Option<Duration>,
    ) -> SendResult {
        let uri = request.uri().clone();
        let tls = uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default().to_string();
        // A port that is not one is refused, not taken for the default.
        let port = uri
            .authority()
            .and_then(|a| crate::http_client::port_of(a, tls).ok());
        let mut report = Report {
            session: Arc::clone(self.session.budget.session()),
            slot: self.slot,
            component: Arc::clone(&self.component),
            destination: format!(
                "{}://{host}:{}",
                if tls { "https" } else { "http" },
                port.map_or("?".to_string(), |p| p.to_string())
            ),
            method: request.method().to_string(),
            status: String::new(),
            started: Instant::now(),
            sent: Arc::default(),
        };
        let sent = Arc::clone(&report.sent);
        let outcome = match port {
            Some(port) => {
                self.exchange(&mut request, (tls, &host, port), deadline, first_byte, sent)
                    .await
            }
            None => Err(HttpError::HttpRequestUriInvalid),
        };
        match outcome {
            Ok((response, driver)) => {
                report.status = response.status().as_u16().to_string();
                report.count("answered");
                let response = response.map(|body| body.with_report(report).boxed_unsync());
                Ok((response, driver))
            }
            Err(e) => {
                report.status = e.to_string();
                report.count(refusal_kind(&e));
                report.log(0);
                Err(e)
            }
        }
    }

    /// Checks, connects and sends; the answer's body is [`Metered`].
    async fn exchange(
        &self,
        request: &mut hyper::Request<WasiBody>,
        (tls, host, port): (bool, &str, u16),
        deadline: Instant,
        first_byte: Option<Duration>,
        sent: Arc<AtomicUsize>,
    ) -> Result<(hyper::Response<Metered>, ConnectionDriver), HttpError> {
        if !self.grants.iter().any(|g| g.allows(tls, host, port)) {
            return Err(HttpError::HttpRequestDenied);
        }
        let session = &self.session;
        let over = |what: &str| {
            crate::metrics::Metrics::count(&metrics().budget_refusals, what);
            HttpError::ConnectionLimitReached
        };
        if session
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_err()
        {
            return Err(over("outbound_requests_per_second"));
        }
        if !session.budget.within(Kind::OutboundBytes) {
            return Err(over("outbound_bytes"));
        }
        let in_flight = session
            .budget
            .try_take(Kind::OutboundRequests, 1)
            .map_err(|_| over("outbound_requests"))?;
        // Secrets for this destination replace whatever the guest sent
        // under their header; no other destination ever gets them.
        for secret in self.secrets.iter() {
            if secret.destination.allows(tls, host, port) {
                request
                    .headers_mut()
                    .insert(secret.header.clone(), secret.value.clone());
            }
        }
        let now = Instant::now();
        let due = deadline.min(now + session.limits.request_timeout);
        let head_due = first_byte.map_or(due, |wait| due.min(now + wait));
        let left = head_due.saturating_duration_since(now);
        let ended = session.budget.ended().clone();
        let exchanged = async {
            let connection = session
                .outbound
                .connect(&session.budget, host, port)
                .await
                .map_err(connect_error)?;
            let permit = connection.permit;
            let (parts, body) = std::mem::replace(
                request,
                hyper::Request::new(
                    http_body_util::Empty::new()
                        .map_err(|e| match e {})
                        .boxed_unsync(),
                ),
            )
            .into_parts();
            let mut parts = parts;
            // The request line carries the path; the host is in `Host`.
            let origin_form = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            parts.uri = origin_form;
            let body = Metered::new(body, Arc::clone(&session.budget), usize::MAX, None, sent);
            let outgoing = hyper::Request::from_parts(parts, body);
            let (response, driver) = if tls {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|_| HttpError::TlsCertificateError)?;
                let stream = tokio_rustls::TlsConnector::from(session.outbound.tls())
                    .connect(name, connection.stream)
                    .await
                    .map_err(HttpError::Tls)?;
                handshake_and_send(TokioIo::new(stream), outgoing).await?
            } else {
                handshake_and_send(TokioIo::new(connection.stream), outgoing).await?
            };
            Ok::<_, HttpError>((response, driver, permit))
        };
        let (response, driver, permit) = tokio::select! {
            _ = ended.cancelled() => return Err(HttpError::ConnectionTerminated),
            answered = tokio::time::timeout(left, exchanged) => match answered {
                Ok(answered) => answered?,
                Err(_) => return Err(HttpError::HttpResponseTimeout),
            },
        };
        let response = response.map(|body| {
            Metered::new(
                body.map_err(HttpError::from).boxed_unsync(),
                Arc::clone(&session.budget),
                session.limits.max_response_bytes,
                Some(in_flight),
                Arc::default(),
            )
            .until(due)
        });
        let driver: ConnectionDriver = Box::new(async move {
            let _permit = permit;
            tokio::select! {
                done = Pin::from(driver) => done,
                _ = ended.cancelled() => Ok(()),
                _ = tokio::time::sleep_until(due.into()) => Ok(()),
            }
        });
        Ok((response, driver))
    }
}

/// An HTTP/1.1 exchange on `io`: the response head, and the future that
/// drives the connection until the body is read.
async fn handshake_and_send<I>(
    io: TokioIo<I>,
    request: hyper::Request<Metered>,
) -> Result<(hyper::Response<hyper::body::Incoming>, ConnectionDriver), HttpError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let driver: ConnectionDriver = Box::new(async move {
        match driver.await {
            Ok(done) => done.map_err(HttpError::from),
            Err(_) => Err(HttpError::ConnectionTerminated),
        }
    });
    Ok((response, driver))
}

/// The error code for an outbound connection that could not be made.
fn connect_error(e: OutboundError) -> HttpError {
    match e {
        OutboundError::Refused(_) => HttpError::DestinationIpProhibited,
        OutboundError::OverBudget(_) | OutboundError::ServerCap(_) => {
            HttpError::ConnectionLimitReached
        }
        OutboundError::Resolve { .. } => HttpError::DestinationNotFound,
        OutboundError::Connect { why, .. } if why.contains("no answer") => {
            HttpError::ConnectionTimeout
        }
        OutboundError::Connect { .. } => HttpError::ConnectionRefused,
        OutboundError::Url(_) => HttpError::HttpRequestUriInvalid,
        OutboundError::Tls { .. } => HttpError::TlsProtocolError,
        OutboundError::Http(e) => HttpError::InternalError(Some(e.to_string())),
    }
}

/// The metric label of a request that got no answer.
fn refusal_kind(e: &HttpError) -> &'static str {
    match e {
        HttpError::HttpRequestDenied => "not_granted",
        HttpError::DestinationIpProhibited => "address_refused",
        HttpError::ConnectionLimitReached => "over_budget",
        HttpError::HttpResponseTimeout | HttpError::ConnectionTimeout => "timeout",
        _ => "failed",
    }
}

/// A body whose bytes are charged to the session's outbound byte budget
/// as they pass, cut off at `limit` bytes (the response cap) or when the
/// budget is spent, and (once [`until`](Self::until) is set) at the
/// request's deadline. Its share of the in-flight budget is held until
/// it ends.
struct Metered {
    inner: WasiBody,
    budget: Arc<SessionBudget>,
    limit: usize,
    /// Bytes passed so far.
    seen: Arc<AtomicUsize>,
    due: Option<Pin<Box<tokio::time::Sleep>>>,
    _in_flight: Option<Held>,
    /// Logged with the bytes seen when the body ends.
    report: Option<Report>,
}

impl Metered {
    fn new(
        inner: WasiBody,
        budget: Arc<SessionBudget>,
        limit: usize,
        in_flight: Option<Held>,
        seen: Arc<AtomicUsize>,
    ) -> Self {
        Metered {
            inner,
            budget,
            limit,
            seen,
            due: None,
            _in_flight: in_flight,
            report: None,
        }
    }

    fn with_report(mut self, report: Report) -> Self {
        self.report = Some(report);
        self
    }

    fn until(mut self, due: Instant) -> Self {
        self.due = Some(Box::pin(tokio::time::sleep_until(due.into())));
        self
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(due) = self.due.as_mut()
            && due.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let Some(data) = frame.data_ref() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let n = data.len();
        if self.seen.fetch_add(n, Ordering::Relaxed) + n > self.limit {
            return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                self.limit as u64,
            )))));
        }
        if !self.budget.charge(Kind::OutboundBytes, n as isize) {
            crate::metrics::Metrics::count(&metrics().budget_refusals, "outbound_bytes");
            return Poll::Ready(Some(Err(HttpError::ConnectionLimitReached)));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if let Some(report) = &self.report {
            report.log(self.seen.load(Ordering::Relaxed));
        }
    }
}

/// What the log line of one request says.
struct Report {
    session: Arc<str>,
    slot: u8,
    component: Arc<str>,
    destination: String,
    method: String,
    /// The answer's status, or why there is none.
    status: String,
    started: Instant,
    /// Request body bytes sent.
    sent: Arc<AtomicUsize>,
}

impl Report {
    fn count(&self, result: &str) {
        metrics()
            .guest_http_requests
            .get_or_create(&crate::metrics::GuestHttpLabels {
                component: self.component.to_string(),
                destination: self.destination.clone(),
                result: result.to_string(),
            })
            .inc();
    }

    fn log(&self, received: usize) {
        tracing::info!(
            session = %self.session,
            slot = self.slot,
            component = %self.component,
            destination = %self.destination,
            method = %self.method,
            status = %self.status,
            sent = self.sent.load(Ordering::Relaxed),
            received,
            ms = self.started.elapsed().as_millis() as u64,
            "guest HTTP request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_a_scheme_a_host_or_its_subdomains_and_a_port() {
        let api = Grant::parse("https://api.example.com").unwrap();
        assert!(api.allows(true, "api.example.com", 443));
        assert!(api.allows(true, "API.Example.com.", 443));
        assert!(
            !api.allows(false, "api.example.com", 80),
            "the scheme counts"
        );
        assert!(
            !api.allows(true, "api.example.com", 8443),
            "the port counts"
        );
        assert!(!api.allows(true, "evil.api.example.com", 443));

        let local = Grant::parse("http://127.0.0.1:11434").unwrap();
        assert!(local.allows(false, "127.0.0.1", 11434));
        assert!(!local.allows(false, "127.0.0.1", 80));

        let any = Grant::parse("https://*.example.com").unwrap();
        assert!(any.allows(true, "a.example.com", 443));
        assert!(any.allows(true, "a.b.example.com", 443));
        assert!(!any.allows(true, "example.com", 443), "only subdomains");
        assert!(!any.allows(true, "badexample.com", 443));

        let v6 = Grant::parse("http://[::1]:8080").unwrap();
        assert!(v6.allows(false, "[::1]", 8080));
    }

    #[test]
    fn grants_that_are_not_destinations_say_why() {
        for (text, why) in [
            ("api.example.com", "scheme://host"),
            ("ftp://example.com", "http or https"),
            ("https://example.com/path", "only a host"),
            ("https://user@example.com", "only a host"),
            ("https://example.com:0", "port"),
            ("https://a.*.example.com", "wildcard"),
            ("https://", "only a host"),
        ] {
            let e = Grant::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::new(
            "model",
            "authorization",
            "Bearer ",
            "sk-very-secret",
            Grant::parse("https://api.example.com").unwrap(),
        )
        .unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("model"));
    }
}
