//! The host's one HTTP/1.1 client. The draft engine uses it to reach its
//! drafters (one keep-alive connection each); push delivery uses it over
//! a connection the outbound connector opened and checked. Every answer
//! is read to a size cap, so a peer that talks without end costs no more
//! than the cap.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::http::uri::Authority;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("cannot connect to {to}: {source}")]
    Connect { to: String, source: std::io::Error },
    #[error("HTTP with {to}: {source}")]
    Http { to: String, source: hyper::Error },
    #[error("bad request for {path}: {source}")]
    Request {
        path: String,
        source: hyper::http::Error,
    },
    #[error("{to} answered with more than {limit} bytes")]
    TooLarge { to: String, limit: usize },
    #[error("{to}: the connection closed before an answer")]
    Closed { to: String },
}

/// The parts of an `http://` or `https://` URL a client needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// True for `https`.
    pub tls: bool,
    /// `host:port` as written, for the `Host` header.
    pub authority: String,
    /// The host, without brackets around an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// The path and query (`/` when the URL has none).
    pub path: String,
}

/// The port an authority names, or the scheme's when it names none. A
/// port that is not one (99999) reads as no port at all to `http`:
/// refused rather than sent to the scheme's default port.
pub fn port_of(authority: &Authority, tls: bool) -> Result<u16, String> {
    let written = authority
        .as_str()
        .rsplit(']')
        .next()
        .and_then(|rest| rest.split_once(':'));
    match (written, authority.port_u16()) {
        (_, Some(port)) if port > 0 => Ok(port),
        (None | Some((_, "")), _) => Ok(if tls { 443 } else { 80 }),
        (Some((_, written)), _) => Err(format!("port {written} is not a port (1 to 65535)")),
    }
}

impl Target {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |why: String| ClientError::Url {
            url: url.to_string(),
            why,
        };
        let uri: Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("only http:// and https:// URLs are supported".into())),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host".into()))?;
        // The authority is sent as the Host header: credentials in it
        // would be sent there, to whoever answers.
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL (user@host) are not sent; give the host alone".into(),
            ));
        }
        let port = port_of(authority, tls).map_err(bad)?;
        Ok(Target {
            tls,
            authority: authority.to_string(),
            host: authority.host().trim_matches(['[', ']']).to_string(),
            port,
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }
}

/// One request: method, path, headers and body. The `Host` header is
/// added by the client.
pub struct Outgoing<'a> {
    pub method: Method,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Bytes,
}

impl Outgoing<'_> {
    fn request(&self, authority: &str) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header("host", authority);
        for (k, v) in self.headers {
            req = req.header(*k, *v);
        }
        req.body(Full::new(self.body.clone()))
            .map_err(|source| ClientError::Request {
                path: self.path.to_string(),
                source,
            })
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Reads an answer's body, at most `limit` bytes of it.
async fn read(
    response: hyper::Response<Incoming>,
    to: &str,
    limit: usize,
) -> Result<Answer, ClientError> {
    let status = response.status();
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(source) => ClientError::Http {
                to: to.to_string(),
                source: *source,
            },
            Err(_) => ClientError::TooLarge {
                to: to.to_string(),
                limit,
            },
        })?
        .to_bytes();
    Ok(Answer { status, body })
}

async fn handshake<S>(stream: S, to: &str) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ClientError::Http {
            to: to.to_string(),
            source,
        })?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request over `stream` (a connection already open to
/// `authority`, plain or TLS), reads the answer to `limit` bytes and
/// closes it.
pub async fn exchange<S>(
    stream: S,
    authority: &str,
    request: Outgoing<'_>,
    limit: usize,
) -> Result<Answer, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut sender = handshake(stream, authority).await?;
    let response = sender
        .send_request(request.request(authority)?)
        .await
        .map_err(|source| ClientError::Http {
            to: authority.to_string(),
            source,
        })?;
    read(response, authority, limit).await
}

/// One keep-alive connection to an origin, reopened when it breaks.
/// Requests on it are sequential.
pub struct KeepAlive {
    authority: String,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl KeepAlive {
    /// A client for `authority` (`host:port`); it connects on first use.
    pub fn new(authority: String) -> KeepAlive {
        KeepAlive {
            authority,
            conn: Mutex::new(None),
        }
    }

    /// `host:port` this client talks to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends `request` and reads the answer to `limit` bytes.
    pub async fn send(&self, request: Outgoing<'_>, limit: usize) -> Result<Answer, ClientError> {
        let response = self.open(request).await?;
        read(response, &self.authority, limit).await
    }

    /// Sends `request` and returns the answer with its body unread (an
    /// event stream). A connection the peer closed between requests is
    /// reopened once.
    pub async fn open(
        &self,
        request: Outgoing<'_>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let mut conn = self.conn.lock().await;
        for attempt in 0..2 {
            let usable = match conn.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !usable {
                let stream = TcpStream::connect(&self.authority)
                    .await
                    .map_err(|source| ClientError::Connect {
                        to: self.authority.clone(),
                        source,
                    })?;
                let _ = stream.set_nodelay(true);
                *conn = Some(handshake(stream, &self.authority).await?);
            }
            let Some(sender) = conn.as_mut() else {
                break;
            };
            match sender.send_request(request.request(&self.authority)?).await {
                Ok(response) => return Ok(response),
                Err(e) if attempt == 0 && e.is_canceled() => *conn = None,
                Err(source) => {
                    return Err(ClientError::Http {
                        to: self.authority.clone(),
                        source,
                    });
                }
            }
        }
        Err(ClientError::Closed {
            to: self.authority.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_urls_with_a_host() {
        let t = Target::parse("http://[::1]:9/hook?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert_eq!(t.authority, "[::1]:9");
        assert_eq!(t.path, "/hook?x=1");
        assert_eq!(Target::parse("http://example.com").unwrap().path, "/");
        let secure = Target::parse("https://example.com/hook").unwrap();
        assert!(secure.tls && secure.port == 443);
        for bad in ["ftp://x/", "not a url", "/path"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        // What would go elsewhere than written is refused, not guessed.
        for (bad, says) in [
            ("http://example.com:99999/h", "port 99999 is not a port"),
            ("http://example.com:0/h", "port 0 is not a port"),
            ("http://[::1]:70000/", "port 70000"),
            ("http://user:pw@example.com/h", "credentials in the URL"),
        ] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let empty_port = Target::parse("http://example.com:/h").unwrap();
        assert_eq!(empty_port.port, 80, "an empty port is the default one");
    }

    #[tokio::test]
    async fn an_answer_past_the_cap_is_an_error_not_a_buffer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = vec![b'x'; 10_000];
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
        });
        let client = KeepAlive::new(authority);
        let request = || Outgoing {
            method: Method::GET,
            path: "/",
            headers: &[],
            body: Bytes::new(),
        };
        let e = client.send(request(), 1000).await.unwrap_err();
        assert!(
            matches!(e, ClientError::TooLarge { limit: 1000, .. }),
            "{e}"
        );
    }
}
