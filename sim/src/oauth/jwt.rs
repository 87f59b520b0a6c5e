//! JWT bearer assertions: RS256, checked against the public half of the org's key pair.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::PublicKey;
use rsa::sha2::Sha256;
use serde::Deserialize;

use super::error::OAuthError;

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
}

/// `aud` may be one string or an array (RFC 7519).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(a) => vec![a],
        Aud::Many(a) => a,
    })
}

fn invalid_assertion() -> OAuthError {
    OAuthError::new("invalid_grant", "invalid assertion")
}

/// Verifies the signature and decodes the claims; what the claims must say is the caller's check.
pub fn verify(assertion: &str, key: &PublicKey) -> Result<Claims, OAuthError> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid_assertion());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| invalid_assertion());
    let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| invalid_assertion())?;
    if header.alg != "RS256" {
        return Err(OAuthError::new("invalid_grant", "invalid assertion: unsupported algorithm"));
    }
    let signature = decode(s)?;
    let signed = &assertion[..h.len() + 1 + p.len()];
    key.pkcs1v15_verify::<Sha256>(signed.as_bytes(), &signature).map_err(|_| invalid_assertion())?;
    serde_json::from_slice(&decode(p)?).map_err(|_| invalid_assertion())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    fn sign(key: &rsa::PrivateKey, header: &str, claims: &str) -> String {
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let sig = key.pkcs1v15_sign::<Sha256>(signed.as_bytes()).unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn verifies_rs256_and_rejects_tampering() {
        let pem = crate::org::OrgIdentity::create(&crate::SimConfig::default()).unwrap().private_key_pem;
        let key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
        let public = key.to_public_key();
        let claims = r#"{"iss":"c","sub":"u","aud":"https://login.salesforce.com","exp":1}"#;
        let jwt = sign(&key, r#"{"alg":"RS256"}"#, claims);
        assert_eq!(verify(&jwt, &public).unwrap().sub, "u");

        let tampered = jwt.replacen('.', ".e", 1);
        assert_eq!(verify(&tampered, &public).unwrap_err().error, "invalid_grant");
        let none_alg = sign(&key, r#"{"alg":"none"}"#, claims);
        assert!(verify(&none_alg, &public).is_err());
    }
}
