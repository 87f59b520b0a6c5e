//! OAuth 2.0: the token endpoint and the bearer-token check every REST call goes through.

pub mod error;
pub mod jwt;
pub mod session;
pub mod token;
