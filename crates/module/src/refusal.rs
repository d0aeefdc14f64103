//! Why the module refused a request: a [`ReasonCode`] programs match on, and the message people
//! read. In development mode both travel in response headers ([`REASON_CODE_HEADER`],
//! [`REASON_HEADER`]); the log always has them.

use std::fmt;
use std::str::FromStr;

use crate::authz::Denial;
use crate::identity::CredentialError;
use crate::oidc::Rejection;

/// The response header with a refusal's message (development mode).
pub const REASON_HEADER: &str = "x-easyauth-reason";
/// The response header with a refusal's [`ReasonCode`] (development mode).
pub const REASON_CODE_HEADER: &str = "x-easyauth-reason-code";

/// What kind of refusal it is; [`ReasonCode::as_str`] is its header spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonCode {
    /// The request names no usable site (Host).
    NoSite,
    /// `/.auth/login/<alias>` names no configured provider, or none is configured.
    UnknownProvider,
    /// No `/.auth` route of that path.
    UnknownRoute,
    /// A body larger than the route reads.
    BodyTooLarge,
    /// A body that is not what the route expects.
    BadRequestBody,
    /// A token failed validation (signature, issuer, lifetime...).
    TokenRejected,
    /// A token's audience is not in `allowedAudiences`.
    AudienceNotAllowed,
    /// The identity provider could not be reached or refused the module.
    ProviderUnavailable,
    /// The client application is not in `allowedApplications`.
    ApplicationNotAllowed,
    /// The client application is not in `jwtClaimChecks.allowedClientApplications`.
    ClientApplicationNotAllowed,
    /// Another authorization rule (principals, groups, tenants, `oid`).
    AuthorizationDenied,
    /// A cookie-authenticated state change from another origin (the CSRF rule).
    CrossSiteRequest,
    /// No credential, and the unauthenticated action refuses.
    AuthenticationRequired,
    /// The route needs a signed-in session.
    SessionRequired,
    /// The session ended more than `tokenRefreshExtensionHours` ago.
    SessionExpired,
    /// The session has no refresh token.
    NoRefreshToken,
    /// The identity provider refused the refresh.
    RefreshRefused,
    /// The token store failed.
    TokenStoreFailed,
    /// The session store did not answer; the session is kept (sign-in is not needed).
    SessionStoreUnavailable,
    /// Another refresh of the same session did not finish in time.
    RefreshInProgress,
    /// A forward-auth check whose original request (`X-Original-*` / `X-Forwarded-*`) is
    /// malformed, too long, or not a path on this site.
    BadForwardedRequest,
    /// The module failed to produce its answer.
    Internal,
}

const SPELLINGS: &[(ReasonCode, &str)] = &[
    (ReasonCode::NoSite, "no-site"),
    (ReasonCode::UnknownProvider, "unknown-provider"),
    (ReasonCode::UnknownRoute, "unknown-route"),
    (ReasonCode::BodyTooLarge, "body-too-large"),
    (ReasonCode::BadRequestBody, "bad-request-body"),
    (ReasonCode::TokenRejected, "token-rejected"),
    (ReasonCode::AudienceNotAllowed, "audience-not-allowed"),
    (ReasonCode::ProviderUnavailable, "provider-unavailable"),
    (ReasonCode::ApplicationNotAllowed, "application-not-allowed"),
    (
        ReasonCode::ClientApplicationNotAllowed,
        "client-application-not-allowed",
    ),
    (ReasonCode::AuthorizationDenied, "authorization-denied"),
    (ReasonCode::CrossSiteRequest, "cross-site-request"),
    (
        ReasonCode::AuthenticationRequired,
        "authentication-required",
    ),
    (ReasonCode::SessionRequired, "session-required"),
    (ReasonCode::SessionExpired, "session-expired"),
    (ReasonCode::NoRefreshToken, "no-refresh-token"),
    (ReasonCode::RefreshRefused, "refresh-refused"),
    (ReasonCode::TokenStoreFailed, "token-store-failed"),
    (
        ReasonCode::SessionStoreUnavailable,
        "session-store-unavailable",
    ),
    (ReasonCode::RefreshInProgress, "refresh-in-progress"),
    (ReasonCode::BadForwardedRequest, "bad-forwarded-request"),
    (ReasonCode::Internal, "internal"),
];

impl ReasonCode {
    /// The code as [`REASON_CODE_HEADER`] carries it, e.g. `application-not-allowed`.
    pub fn as_str(self) -> &'static str {
        SPELLINGS
            .iter()
            .find(|(code, _)| *code == self)
            .map_or("internal", |(_, s)| s)
    }

    /// The code of a token validation failure.
    pub(crate) fn of_rejection(rejection: &Rejection) -> ReasonCode {
        match rejection {
            Rejection::Audience { .. } => ReasonCode::AudienceNotAllowed,
            _ => ReasonCode::TokenRejected,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`REASON_CODE_HEADER`] value that names no code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refusal reason code {0:?}")]
pub struct UnknownReasonCode(pub String);

impl FromStr for ReasonCode {
    type Err = UnknownReasonCode;

    fn from_str(s: &str) -> Result<ReasonCode, UnknownReasonCode> {
        SPELLINGS
            .iter()
            .find(|(_, spelling)| spelling.eq_ignore_ascii_case(s.trim()))
            .map(|(code, _)| *code)
            .ok_or_else(|| UnknownReasonCode(s.to_owned()))
    }
}

/// A refusal: its code and the message that explains it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// What kind of refusal.
    pub code: ReasonCode,
    /// What people read (the log, and the response in development mode).
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<&Denial> for Refusal {
    fn from(denial: &Denial) -> Refusal {
        let code = match denial {
            Denial::Application { .. } | Denial::NoClientApplication => {
                ReasonCode::ApplicationNotAllowed
            }
            Denial::ClientApplication { .. } => ReasonCode::ClientApplicationNotAllowed,
            _ => ReasonCode::AuthorizationDenied,
        };
        Refusal::new(code, denial.to_string())
    }
}

impl From<&CredentialError> for Refusal {
    fn from(error: &CredentialError) -> Refusal {
        let code = match error {
            CredentialError::Bearer(rejection) => ReasonCode::of_rejection(rejection),
            CredentialError::NoProvider(_) => ReasonCode::ProviderUnavailable,
            CredentialError::SessionStore(_) => ReasonCode::SessionStoreUnavailable,
        };
        Refusal::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_spelling() {
        for (code, spelling) in SPELLINGS {
            assert_eq!(code.as_str(), *spelling);
            assert_eq!(spelling.parse::<ReasonCode>(), Ok(*code));
        }
        assert!("no-such-code".parse::<ReasonCode>().is_err());
    }

    #[test]
    fn denials_keep_their_message_and_say_which_rule() {
        let denial = Denial::Application {
            client: "abc".into(),
            allowed: vec!["xyz".into()],
        };
        let refusal = Refusal::from(&denial);
        assert_eq!(refusal.code, ReasonCode::ApplicationNotAllowed);
        assert_eq!(refusal.message, denial.to_string());
        assert_eq!(
            Refusal::from(&Denial::NoObjectId).code,
            ReasonCode::AuthorizationDenied
        );
    }
}
