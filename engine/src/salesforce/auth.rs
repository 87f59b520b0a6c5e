//! OAuth 2.0 against the token endpoint: JWT bearer, username-password or client credentials,
//! whichever the credentials file selects. Tokens carry no expiry: a 401 `INVALID_SESSION_ID`
//! on any call is what says "log in again".

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::credentials::{Flow, SalesforceCredentials};
use super::error::SalesforceError;
use super::secret::Secret;

/// A logged-in session: where to send calls and with what token.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: Secret,
    pub instance_url: String,
    /// From the identity URL's second-to-last segment; the Pub/Sub API wants it as `tenantid`.
    pub org_id: String,
    /// The user the token acts as, from the identity URL's last segment: the `createdById` of the
    /// jobs this session creates, which is how a job is recognised as ours.
    pub user_id: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: String,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// JWT lifetime; Salesforce accepts up to a few minutes.
const JWT_LIFETIME_SECS: u64 = 180;

pub async fn login(http: &reqwest::Client, creds: &SalesforceCredentials) -> Result<Session, SalesforceError> {
    let url = format!("{}/services/oauth2/token", creds.login_url);
    let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
    let form: Vec<(&str, String)> = match creds.flow() {
        Flow::JwtBearer => vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".into()),
            ("assertion", jwt_assertion(creds)?),
        ],
        Flow::UsernamePassword => vec![
            ("grant_type", "password".into()),
            ("client_id", creds.client_id.clone()),
            ("client_secret", secret(&creds.client_secret)),
            ("username", creds.username.clone().unwrap_or_default()),
            ("password", secret(&creds.password)),
        ],
        Flow::ClientCredentials => vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", creds.client_id.clone()),
            ("client_secret", secret(&creds.client_secret)),
        ],
    };
    let transport = |e: reqwest::Error| SalesforceError::transport("login", e);
    let response = http.post(&url).form(&form).send().await.map_err(transport)?;
    let status = response.status();
    let body = response.text().await.map_err(transport)?;
    if !status.is_success() {
        if status.is_server_error() {
            return Err(SalesforceError::Api {
                what: "login".into(),
                status: status.as_u16(),
                code: "SERVER_ERROR".into(),
                message: body.chars().take(200).collect(),
            });
        }
        let e: TokenError = serde_json::from_str(&body).unwrap_or(TokenError {
            error: format!("http_{}", status.as_u16()),
            error_description: body.chars().take(200).collect(),
        });
        return Err(SalesforceError::Auth { url, error: e.error, description: e.error_description });
    }
    let token: TokenResponse = serde_json::from_str(&body).map_err(|e| SalesforceError::Auth {
        url: url.clone(),
        error: "bad_response".into(),
        description: e.to_string(),
    })?;
    let (org_id, user_id) = identity_ids(&token.id);
    Ok(Session {
        access_token: Secret::new(token.access_token),
        instance_url: token.instance_url.trim_end_matches('/').to_string(),
        org_id,
        user_id,
    })
}

/// The org and user ids of an identity URL (`https://login.salesforce.com/id/00D.../005...`).
fn identity_ids(id_url: &str) -> (String, String) {
    let mut segments = id_url.trim_end_matches('/').rsplit('/');
    let user = segments.next().unwrap_or_default().to_string();
    let org = segments.next().unwrap_or_default().to_string();
    if org.starts_with("00D") && user.starts_with("005") { (org, user) } else { (org, String::new()) }
}

/// The audience Salesforce expects: its login hosts for My Domain URLs, else the login URL itself
/// (a simulator, an Experience Cloud site).
fn audience(login_url: &str) -> String {
    let host = login_url.split("://").nth(1).unwrap_or(login_url).split('/').next().unwrap_or("");
    if host.ends_with(".sandbox.my.salesforce.com") || host == "test.salesforce.com" {
        "https://test.salesforce.com".into()
    } else if host.ends_with(".my.salesforce.com") || host == "login.salesforce.com" {
        "https://login.salesforce.com".into()
    } else {
        login_url.to_string()
    }
}

fn jwt_assertion(creds: &SalesforceCredentials) -> Result<String, SalesforceError> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: String,
        exp: u64,
    }
    let key_path =
        creds.private_key_path.as_ref().ok_or_else(|| SalesforceError::Config("no private_key_path".into()))?;
    crate::credentials::permissions::warn_if_loose(key_path);
    let pem = std::fs::read(key_path)
        .map_err(|e| SalesforceError::Config(format!("cannot read the JWT private key {}: {e}", key_path.display())))?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
        SalesforceError::Config(format!("{} is not an RSA private key in PEM form: {e}", key_path.display()))
    })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let claims = Claims {
        iss: &creds.client_id,
        sub: creds.username.as_deref().unwrap_or_default(),
        aud: audience(&creds.login_url),
        exp: now + JWT_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
        .map_err(|e| SalesforceError::Config(format!("cannot sign the JWT assertion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_urls() {
        let (org, user) = identity_ids("https://login.salesforce.com/id/00D5g000004ABCDEAS/0055g00000XYZabAAH");
        assert_eq!((org.as_str(), user.as_str()), ("00D5g000004ABCDEAS", "0055g00000XYZabAAH"));
        // No identity URL: no user to recognise jobs by, so none is ever taken as ours.
        assert_eq!(identity_ids(""), (String::new(), String::new()));
    }

    #[test]
    fn audiences() {
        assert_eq!(audience("https://acme.my.salesforce.com"), "https://login.salesforce.com");
        assert_eq!(audience("https://acme--dev.sandbox.my.salesforce.com"), "https://test.salesforce.com");
        assert_eq!(audience("https://login.salesforce.com"), "https://login.salesforce.com");
        assert_eq!(audience("http://127.0.0.1:4444"), "http://127.0.0.1:4444");
    }
}
