//! Who may use the control API: anyone who can open the socket (mode 0600: the engine's user) or
//! reach the loopback port, unless a token is configured; then every request carries it. A
//! non-loopback bind without a token is refused, since it would hand the engine to the network.

use std::net::SocketAddr;
use std::path::Path;

use tonic::{Request, Status};

/// The token, kept out of `Debug` so it cannot reach a log line by accident.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the control token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the control token {0} is empty")]
    Empty(&'static str),
    #[error(
        "refusing to serve the control API on {0}: it is not a loopback address and no token is set \
         (--control-token-file or BULKFLOW_CONTROL_TOKEN)"
    )]
    OpenBind(SocketAddr),
}

/// The environment variable that may carry the token itself.
pub const TOKEN_ENV: &str = "BULKFLOW_CONTROL_TOKEN";

/// The token from `file` (first line, trimmed), else from [`TOKEN_ENV`], else none.
pub fn load_token(file: Option<&Path>, env: Option<String>) -> Result<Option<Token>, AuthError> {
    let (text, what) = match (file, env) {
        (Some(path), _) => {
            bulkflow_engine::credentials::permissions::warn_if_loose(path);
            let text = std::fs::read_to_string(path)
                .map_err(|source| AuthError::Read { path: path.display().to_string(), source })?;
            (text, "file")
        }
        (None, Some(value)) => (value, TOKEN_ENV),
        (None, None) => return Ok(None),
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(AuthError::Empty(what));
    }
    Ok(Some(Token(token.to_owned())))
}

impl Token {
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

/// Refuses a TCP bind that anyone on the network could reach, unless a token guards it.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> Result<(), AuthError> {
    if addr.ip().is_loopback() || token.is_some() { Ok(()) } else { Err(AuthError::OpenBind(addr)) }
}

/// The interceptor: with a token, a request without `authorization: Bearer <token>` is refused.
pub fn interceptor(token: Option<Token>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    let expected = token.map(|t| format!("Bearer {}", t.0).into_bytes());
    move |request: Request<()>| {
        let Some(expected) = &expected else { return Ok(request) };
        let given = request.metadata().get("authorization").map(|v| v.as_bytes()).unwrap_or_default();
        if constant_time_eq(given, expected) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("a valid `authorization: Bearer <token>` is required"))
        }
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_bind_needs_a_token() {
        let open: SocketAddr = "0.0.0.0:7480".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:7480".parse().unwrap();
        assert!(matches!(check_bind(open, None), Err(AuthError::OpenBind(_))));
        assert!(check_bind(local, None).is_ok());
        assert!(check_bind(open, Some(&Token("t".into()))).is_ok());
    }

    #[test]
    fn requests_without_the_token_are_refused() {
        let mut check = interceptor(Some(Token("s3cret".into())));
        assert_eq!(check(Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        let mut wrong = Request::new(());
        wrong.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(check(wrong).unwrap_err().code(), tonic::Code::Unauthenticated);
        let mut right = Request::new(());
        right.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(check(right).is_ok());
        assert!(interceptor(None)(Request::new(())).is_ok());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let token = load_token(None, Some(" s3cret\n".into())).unwrap().unwrap();
        assert_eq!(token.reveal(), "s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(matches!(load_token(None, Some("  ".into())), Err(AuthError::Empty(_))));
    }
}
