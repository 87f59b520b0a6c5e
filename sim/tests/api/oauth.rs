use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bulkflow_sim::{FaultConfig, Simulator};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{Org, V, assert_error, config};

async fn token_request(sim: &Simulator, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new().post(format!("{}/services/oauth2/token", sim.url())).form(form).send().await.unwrap()
}

async fn assert_oauth_error(resp: reqwest::Response, error: &str, description: &str) {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error": error, "error_description": description}));
}

fn jwt(pem: &str, claims: &Value) -> String {
    let key = rsa::PrivateKey::from_pkcs8_pem(pem).unwrap();
    let signed =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = key.pkcs1v15_sign::<Sha256>(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims(sim: &Simulator, aud: &str, exp_in: i64) -> Value {
    let c = sim.credentials();
    json!({"iss": c.client_id, "sub": c.username, "aud": aud, "exp": chrono::Utc::now().timestamp() + exp_in})
}

/// Checks the success shape; returns the token.
async fn assert_token(sim: &Simulator, resp: reqwest::Response, scoped: bool) -> String {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let org_id = sim.org_id();
    assert_eq!(org_id.len(), 18);
    assert!(org_id.starts_with("00D"));
    assert!(token.starts_with(&format!("{}!AQ", &org_id[..15])), "{token}");
    assert_eq!(body["instance_url"], sim.url());
    assert_eq!(body["token_type"], "Bearer");
    let id = body["id"].as_str().unwrap();
    let segments: Vec<&str> = id.rsplit('/').collect();
    assert_eq!(segments[1], org_id, "second-to-last segment of id is the org id");
    assert!(segments[0].starts_with("005") && segments[0].len() == 18);
    let issued_at = body["issued_at"].as_str().expect("issued_at is a string");
    let ms: i64 = issued_at.parse().unwrap();
    assert!((chrono::Utc::now().timestamp_millis() - ms).abs() < 60_000);
    let mut mac = Hmac::<Sha256>::new_from_slice(sim.credentials().client_secret.as_bytes()).unwrap();
    mac.update(format!("{id}{issued_at}").as_bytes());
    assert_eq!(body["signature"], STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(body.get("scope").is_some(), scoped);
    assert!(body.get("refresh_token").is_none());
    token.to_string()
}

async fn works(sim: &Simulator, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}/services/data/{V}/jobs/query", sim.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn all_three_flows_issue_working_tokens() {
    let sim = Simulator::start(config(10)).await.unwrap();
    let c = sim.credentials().clone();

    let resp = token_request(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("username", &c.username),
            ("password", &c.password),
        ],
    )
    .await;
    let t1 = assert_token(&sim, resp, false).await;

    let resp = token_request(
        &sim,
        &[("grant_type", "client_credentials"), ("client_id", &c.client_id), ("client_secret", &c.client_secret)],
    )
    .await;
    let t2 = assert_token(&sim, resp, true).await;

    let assertion = jwt(&c.private_key_pem, &claims(&sim, sim.url(), 120));
    let resp = token_request(
        &sim,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)],
    )
    .await;
    let t3 = assert_token(&sim, resp, true).await;

    // The real login host as audience is accepted too: clients configured for production send it.
    let assertion = jwt(&c.private_key_pem, &claims(&sim, "https://login.salesforce.com", 120));
    let resp = token_request(
        &sim,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    for t in [&t1, &t2, &t3] {
        assert_eq!(works(&sim, t).await, StatusCode::OK);
    }
    assert_ne!(t1, t2);
    let secrets = [&c.client_id, &c.client_secret, &c.username, &c.password];
    assert!(secrets.iter().all(|s| s.len() >= 16), "random secrets are 16+ characters");
}

#[tokio::test]
async fn client_credentials_by_basic_auth() {
    let sim = Simulator::start(config(1)).await.unwrap();
    let c = sim.credentials();
    let resp = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.url()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_token(&sim, resp, true).await;
}

#[tokio::test]
async fn token_errors_have_the_real_shapes() {
    let sim = Simulator::start(config(1).credentials(
        "cid-0123456789abcdef",
        "secret-0123456789abcdef",
        "u@example.com",
        "pw-0123456789abcdef",
    ))
    .await
    .unwrap();
    let cc = |id: &'static str, secret: &'static str| {
        [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)]
    };
    assert_oauth_error(
        token_request(&sim, &cc("nope", "secret-0123456789abcdef")).await,
        "invalid_client_id",
        "client identifier invalid",
    )
    .await;
    assert_oauth_error(
        token_request(&sim, &cc("cid-0123456789abcdef", "wrong")).await,
        "invalid_client",
        "invalid client credentials",
    )
    .await;
    let pw = |p: &'static str| {
        [
            ("grant_type", "password"),
            ("client_id", "cid-0123456789abcdef"),
            ("client_secret", "secret-0123456789abcdef"),
            ("username", "u@example.com"),
            ("password", p),
        ]
    };
    assert_oauth_error(token_request(&sim, &pw("wrong")).await, "invalid_grant", "authentication failure").await;
    assert_oauth_error(
        token_request(&sim, &[("grant_type", "authorization_code")]).await,
        "unsupported_grant_type",
        "grant type not supported",
    )
    .await;
    assert_oauth_error(token_request(&sim, &[]).await, "unsupported_grant_type", "grant type not supported").await;
}

#[tokio::test]
async fn jwt_errors() {
    let sim = Simulator::start(config(1)).await.unwrap();
    let c = sim.credentials().clone();
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let send = |assertion: String| {
        let sim = &sim;
        async move { token_request(sim, &[("grant_type", grant), ("assertion", &assertion)]).await }
    };

    assert_oauth_error(
        send(jwt(&c.private_key_pem, &claims(&sim, "https://elsewhere.example", 120))).await,
        "invalid_grant",
        "audience is invalid",
    )
    .await;
    assert_oauth_error(
        send(jwt(&c.private_key_pem, &claims(&sim, sim.url(), -10))).await,
        "invalid_grant",
        "expired authorization code",
    )
    .await;
    let mut wrong_iss = claims(&sim, sim.url(), 120);
    wrong_iss["iss"] = json!("someone-else");
    assert_oauth_error(
        send(jwt(&c.private_key_pem, &wrong_iss)).await,
        "invalid_client_id",
        "client identifier invalid",
    )
    .await;
    let mut wrong_sub = claims(&sim, sim.url(), 120);
    wrong_sub["sub"] = json!("stranger@example.com");
    assert_oauth_error(
        send(jwt(&c.private_key_pem, &wrong_sub)).await,
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    .await;
    assert_oauth_error(send("not.a.jwt".into()).await, "invalid_grant", "invalid assertion").await;

    // Signed with a key that is not the simulator's.
    let other = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let other_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, rsa::pkcs8::LineEnding::LF).unwrap();
    assert_oauth_error(
        send(jwt(&other_pem, &claims(&sim, sim.url(), 120))).await,
        "invalid_grant",
        "invalid assertion",
    )
    .await;
}

#[tokio::test]
async fn rest_calls_need_a_live_token() {
    let org = Org::start(config(1).token_ttl(Duration::from_secs(1))).await;
    let list = |token: Option<&str>| {
        let mut req = org.http.get(org.jobs_url());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(list(Some(&org.token)).await.unwrap().status(), StatusCode::OK);
    let message = assert_error(list(None).await.unwrap(), StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
    assert_eq!(message, "Session expired or invalid");
    assert_error(list(Some("00Dbogus!AQxyz")).await.unwrap(), StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
    // The older `OAuth` scheme works as well.
    let resp =
        org.http.get(org.jobs_url()).header("Authorization", format!("OAuth {}", org.token)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error(list(Some(&org.token)).await.unwrap(), StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
    // Logging in again is the cure, as clients do on INVALID_SESSION_ID.
    let fresh = crate::common::login(&org.http, &org.sim).await;
    assert_eq!(list(Some(&fresh)).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn token_expiry_at_runtime() {
    let org = Org::start(config(1)).await;
    let resp = org.set_faults(json!({"revoke_tokens": true})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["revoke_tokens"], false);
    let resp = org.http.get(org.jobs_url()).bearer_auth(&org.token).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
    let fresh = crate::common::login(&org.http, &org.sim).await;
    let resp = org.http.get(org.jobs_url()).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A shorter TTL set at runtime applies to tokens already out.
    org.sim.set_faults(FaultConfig { token_ttl_secs: 0, ..FaultConfig::default() });
    let resp = org.http.get(org.jobs_url()).bearer_auth(&fresh).send().await.unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID").await;
}
