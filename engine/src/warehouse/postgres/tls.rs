//! PostgreSQL over TLS, asked for as libpq asks for it: `sslmode` in the URL, `sslrootcert` for a
//! CA of the server's own, `sslcert` + `sslkey` for a client certificate. tokio-postgres knows
//! `sslmode` `disable`, `prefer` and `require` only, and refuses the file parameters, so they are
//! read here and taken out of the URL it parses.
//!
//! Every mode but `disable` verifies the server: its certificate must chain to a trusted root
//! (the system's, `tls_ca_file`'s, `sslrootcert`'s) and name the host dialled. That is stricter
//! than libpq's `prefer` and `require`, which encrypt without checking whom to: bulkflow has no
//! mode that trusts any server. `prefer` (the default, as in libpq) still falls back to plain
//! TCP when the server offers no TLS at all.

use std::path::PathBuf;

use crate::tls::Trust;

/// How to reach the server, and the URL left for tokio-postgres to parse.
pub struct Prepared {
    pub url: String,
    /// `None`: plain TCP (`sslmode=disable`).
    pub tls: Option<rustls::ClientConfig>,
    /// `sslmode=disable` to a host that is not this machine: the caller warns, at every connect.
    pub plain_over_network: bool,
}

/// Reads the TLS parameters out of `url` (`postgres://…?sslmode=…` or `host=… sslmode=…`). An
/// error names the parameter, never the URL: it may hold a password.
pub fn prepare(url: &str, trust: &Trust) -> Result<Prepared, String> {
    let mut params = Params::default();
    let (url, host) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url).map_err(|e| format!("the connection URL does not parse: {e}"))?;
        let mut kept = Vec::new();
        for (key, value) in parsed.query_pairs() {
            if let Some(value) = params.take(&key, &value)? {
                kept.push((key.into_owned(), value));
            }
        }
        let host = parsed.host_str().map(str::to_string);
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        (parsed.to_string(), host)
    } else {
        // Keyword/value form; values with spaces (quoted) are left as they are.
        let mut kept = Vec::new();
        let mut host = None;
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((key, value)) => {
                    if key == "host" {
                        host = Some(value.to_string());
                    }
                    if let Some(value) = params.take(key, value)? {
                        kept.push(format!("{key}={value}"));
                    }
                }
                None => kept.push(word.to_string()),
            }
        }
        (kept.join(" "), host)
    };
    if params.disabled {
        // No host, or a socket directory, is this machine too.
        let local =
            host.as_deref().is_none_or(|h| h.is_empty() || h.starts_with('/') || crate::tls::is_loopback_host(h));
        return Ok(Prepared { url, tls: None, plain_over_network: !local });
    }
    let client = match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
        _ => return Err("`sslcert` and `sslkey` go together".into()),
    };
    let config = trust.rustls(params.root_cert.as_deref(), client).map_err(|e| e.to_string())?;
    Ok(Prepared { url, tls: Some(config), plain_over_network: false })
}

#[derive(Default)]
struct Params {
    disabled: bool,
    root_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Params {
    /// Takes a TLS parameter; what tokio-postgres should still see comes back.
    fn take(&mut self, key: &str, value: &str) -> Result<Option<String>, String> {
        match key {
            "sslmode" => match value {
                "disable" => {
                    self.disabled = true;
                    Ok(Some(value.into()))
                }
                "prefer" | "require" => Ok(Some(value.into())),
                // Verification is always on; both mean "TLS or nothing".
                "verify-ca" | "verify-full" => Ok(Some("require".into())),
                other => {
                    Err(format!("sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"))
                }
            },
            "sslrootcert" => {
                self.root_cert = Some(value.into());
                Ok(None)
            }
            "sslcert" => {
                self.cert = Some(value.into());
                Ok(None)
            }
            "sslkey" => {
                self.key = Some(value.into());
                Ok(None)
            }
            _ => Ok(Some(value.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_modes_map_to_what_tokio_postgres_knows() {
        let trust = Trust::default();
        let p =
            prepare("postgres://u:secret@db.example:5432/x?sslmode=verify-full&application_name=b", &trust).unwrap();
        assert_eq!(p.url, "postgres://u:secret@db.example:5432/x?sslmode=require&application_name=b");
        assert!(p.tls.is_some() && !p.plain_over_network);
        let p = prepare("postgres://u@db.example/x?sslmode=disable", &trust).unwrap();
        assert!(p.tls.is_none() && p.plain_over_network);
        let p = prepare("postgres://u@127.0.0.1/x?sslmode=disable", &trust).unwrap();
        assert!(p.tls.is_none() && !p.plain_over_network);
        let p = prepare("host=db.example user=u sslmode=disable", &trust).unwrap();
        assert!(p.plain_over_network && p.url == "host=db.example user=u sslmode=disable");
        // The default is libpq's `prefer`: TLS, verified, when the server offers it.
        let p = prepare("postgres://u@db.example/x", &trust).unwrap();
        assert!(p.tls.is_some() && p.url == "postgres://u@db.example/x");

        let err = prepare("postgres://u:secret@h/x?sslmode=allow-anything", &trust).err().unwrap();
        assert!(err.contains("sslmode `allow-anything`") && !err.contains("secret"), "{err}");
        let err =
            prepare("postgres://u:secret@h/x?sslmode=require&sslrootcert=/nonexistent/ca.pem", &trust).err().unwrap();
        assert!(err.contains("/nonexistent/ca.pem") && !err.contains("secret"), "{err}");
        let err = prepare("postgres://h/x?sslcert=/c.pem", &trust).err().unwrap();
        assert!(err.contains("go together"), "{err}");
    }
}
