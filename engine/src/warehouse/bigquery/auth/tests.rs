//! The JWT bearer exchange against a real (tiny) token endpoint on loopback: what it is sent, the
//! token it hands back, the cache, and the errors of a refused or broken endpoint.

use std::sync::{Arc, Mutex};

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A one-route HTTP/1.1 server: records each request's body and answers with `status` and
/// `body`, numbering tokens so a test can tell a cached token from a new one.
struct TokenEndpoint {
    uri: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn token_endpoint(status: u16, body: &'static str) -> TokenEndpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/token", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed before sending a request");
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&request[..head_end]).to_string();
                assert!(head.starts_with("POST /token "), "{head}");
                let count = {
                    let mut bodies = seen.lock().unwrap();
                    bodies.push(String::from_utf8_lossy(&request[head_end..]).to_string());
                    bodies.len()
                };
                let body = body.replace("{n}", &count.to_string());
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            });
        }
    });
    TokenEndpoint { uri, bodies }
}

/// A fresh RSA key: (private PKCS#8 PEM, public PEM).
fn keypair() -> (String, String) {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    (private, public)
}

fn source(private_pem: &str, token_uri: &str) -> TokenSource {
    let key = ServiceAccountKey {
        client_email: "bulkflow@demo.iam.gserviceaccount.com".into(),
        private_key: private_pem.into(),
        private_key_id: Some("key-1".into()),
        token_uri: Some(token_uri.into()),
    };
    TokenSource::new(key, PathBuf::from("/etc/gcp/credentials.json"), BIGQUERY_SCOPE, &Trust::default()).unwrap()
}

#[derive(serde::Deserialize, Debug)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

#[tokio::test]
async fn a_signed_jwt_is_exchanged_for_a_token_that_is_cached() {
    let endpoint =
        token_endpoint(200, r#"{"access_token": "ya29.token-{n}", "expires_in": 3599, "token_type": "Bearer"}"#).await;
    let (private, public) = keypair();
    let tokens = source(&private, &endpoint.uri);
    assert_eq!(tokens.token().await.unwrap(), "ya29.token-1");
    assert_eq!(tokens.token().await.unwrap(), "ya29.token-1", "cached while it has time left");
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 1);

    let body = endpoint.bodies.lock().unwrap()[0].clone();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let header = jsonwebtoken::decode_header(&form["assertion"]).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some("key-1"));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&endpoint.uri]);
    let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Claims>(&form["assertion"], &decoding, &validation)
        .expect("the assertion is signed by the service account's key")
        .claims;
    assert_eq!(claims.iss, "bulkflow@demo.iam.gserviceaccount.com");
    assert_eq!(claims.scope, BIGQUERY_SCOPE);
    assert_eq!(claims.aud, endpoint.uri);
    assert_eq!(claims.exp - claims.iat, 3600);

    tokens.invalidate().await;
    assert_eq!(tokens.token().await.unwrap(), "ya29.token-2", "a token the API refused is fetched anew");
}

#[tokio::test]
async fn a_token_about_to_expire_is_renewed() {
    let endpoint = token_endpoint(200, r#"{"access_token": "t{n}", "expires_in": 30}"#).await;
    let (private, _) = keypair();
    let tokens = source(&private, &endpoint.uri);
    assert_eq!(tokens.token().await.unwrap(), "t1");
    assert_eq!(tokens.token().await.unwrap(), "t2", "30 s left is less than the minute kept in reserve");
}

#[tokio::test]
async fn a_refused_assertion_is_a_clear_error_without_secrets() {
    let endpoint =
        token_endpoint(400, r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#).await;
    let (private, _) = keypair();
    let err = source(&private, &endpoint.uri).token().await.unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("invalid_grant: Invalid JWT Signature.") && text.contains("HTTP 400"), "{text}");
    assert!(text.contains("bulkflow@demo.iam.gserviceaccount.com"), "{text}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains("assertion="), "{text}");

    let broken = token_endpoint(503, r#"{}"#).await;
    assert!(source(&private, &broken.uri).token().await.unwrap_err().is_retryable());
}

#[test]
fn a_malformed_key_file_names_the_file_and_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    std::fs::write(&path, r#"{"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----secret"#).unwrap();
    let text = ServiceAccountKey::read(&path).unwrap_err().to_string();
    assert!(text.contains("credentials.json") && !text.contains("secret"), "{text}");

    std::fs::write(
        &path,
        r#"{"type": "service_account", "client_email": "a@b", "private_key": "not a key", "project_id": "p"}"#,
    )
    .unwrap();
    let key = ServiceAccountKey::read(&path).expect("Google's extra keys are accepted");
    let tokens = TokenSource::new(key, path.clone(), BIGQUERY_SCOPE, &Trust::default()).unwrap();
    let text = tokens.assertion().unwrap_err().to_string();
    assert!(
        text.contains("credentials.json") && text.contains("not an RSA private key") && !text.contains("not a key"),
        "{text}"
    );
}
