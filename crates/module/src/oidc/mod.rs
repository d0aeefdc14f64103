//! OpenID Connect relying-party support: the outbound HTTP client, provider discovery, Entra
//! issuer forms, the JWKS cache, bearer-token validation with its cache, and a token-endpoint
//! client.
//!
//! Typical use for an Entra configuration:
//! discover the provider ([`discover_from_issuer`]), build a [`ValidationPolicy`] from
//! [`aad_issuers`] of the discovered issuer, the allowed audiences and the `jwks_uri`, and call
//! [`TokenValidator::validate`] for each bearer token.

mod cache;
pub mod http;
pub mod issuers;
pub mod jwks;
pub mod metadata;
mod tally;
mod token;
pub mod token_client;
pub mod validate;

pub use http::{HttpError, OidcHttp};
pub use issuers::aad_issuers;
pub use jwks::{JwksCache, JwksSettings, KeyKind};
pub use metadata::{MetadataError, ProviderMetadata, discover_from_issuer, discovery_url};
pub use tally::FetchTally;
pub use token_client::{ClientCredentials, TokenClient, TokenError, TokenResponse};
pub use validate::{
    CompactJws, JwsHeader, PreparedPolicy, Rejection, TokenValidator, ValidatedToken,
    ValidationPolicy, ValidatorSettings, check_claims, decode_unverified,
};
