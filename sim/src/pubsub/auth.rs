//! The auth metadata every Pub/Sub RPC carries: `accesstoken`, `instanceurl` and `tenantid`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::status::{self, AUTH_ERROR, AUTH_HEADERS_INVALID};
use crate::state::{AppState, lock};

/// A checked caller: the token it presented, to check again during a long stream.
#[derive(Clone)]
pub struct Caller {
    pub issued_at: DateTime<Utc>,
}

pub fn check(app: &Arc<AppState>, metadata: &MetadataMap) -> Result<Caller, Status> {
    let get = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let (Some(token), Some(instance), Some(tenant)) = (get("accesstoken"), get("instanceurl"), get("tenantid")) else {
        return Err(status::error(
            Code::Unauthenticated,
            AUTH_HEADERS_INVALID,
            "accesstoken, instanceurl and tenantid metadata are required",
        ));
    };
    if instance.trim_end_matches('/') != app.base_url || tenant != app.identity.org_id {
        return Err(status::error(
            Code::Unauthenticated,
            AUTH_HEADERS_INVALID,
            "instanceurl or tenantid does not match",
        ));
    }
    let issued_at = lock(&app.tokens).get(token).copied();
    match issued_at {
        Some(issued_at) if app.faults.token_valid(issued_at, Utc::now()) => Ok(Caller { issued_at }),
        _ => Err(expired()),
    }
}

pub fn expired() -> Status {
    status::error(Code::Unauthenticated, AUTH_ERROR, "the access token is invalid or expired")
}

impl Caller {
    pub fn still_valid(&self, app: &AppState) -> bool {
        app.faults.token_valid(self.issued_at, Utc::now())
    }
}
