//! The settings' enumerations and every spelling the service accepts for them: ARM names, the
//! file-format names (`RejectWith401`, `IdentityDerived`), integers (file configs are read by a .NET
//! JSON reader that maps numbers to enum members), all case-insensitively.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An enum read from a name or an integer.
trait Spelled: Sized + Copy + 'static {
    /// Accepted names (compared case-insensitively), canonical names first.
    const NAMES: &'static [(&'static str, Self)];
    /// Accepted integers.
    const NUMBERS: &'static [(u64, Self)];
    /// The ARM spelling, used when writing JSON.
    fn canonical(self) -> &'static str;

    fn expected() -> String {
        let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
        let max = Self::NUMBERS.iter().map(|(n, _)| *n).max().unwrap_or(0);
        format!(
            "one of {} (any case) or an integer 0-{max}",
            names.join(", ")
        )
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, v)| *v)
    }
}

fn deserialize_spelled<'de, T: Spelled, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<T: Spelled> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&T::expected())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            T::from_name(v)
                .ok_or_else(|| E::custom(format!("expected {}, found {v:?}", T::expected())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::NUMBERS
                .iter()
                .find(|(n, _)| *n == v)
                .map(|(_, t)| *t)
                .ok_or_else(|| E::custom(format!("expected {}, found {v}", T::expected())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::custom(format!("expected {}, found {v}", T::expected()))),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            Err(E::custom(format!("expected {}, found {v}", T::expected())))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
            Err(E::custom(format!("expected {}, found {v}", T::expected())))
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

macro_rules! spelled_serde {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_spelled(d)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.canonical())
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.canonical())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            /// Parses any accepted name (not integers), case-insensitively.
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as Spelled>::from_name(s)
                    .ok_or_else(|| format!("expected {}, found {s:?}", <$t as Spelled>::expected()))
            }
        }
    };
}

/// `globalValidation.unauthenticatedClientAction`: what happens to a request without a valid
/// identity when authentication is required.
///
/// Accepted names (any case): `RedirectToLoginPage`, `AllowAnonymous`, `Return401`, `Return403`,
/// `Return404` (ARM/CLI), `RejectWith401`, `RejectWith404` (file format and Container Apps).
///
/// Accepted integers — only `0 = RedirectToLoginPage` is certain; the rest follow the
/// order the file-format docs list the members in (`RedirectToLoginPage|AllowAnonymous|
/// RejectWith401|RejectWith404`), with `Return403`, added to the service later, last:
/// `0` RedirectToLoginPage, `1` AllowAnonymous, `2` Return401, `3` Return404, `4` Return403.
/// (The ARM enum lists `Return403` fourth, but ARM takes names, never integers; integers only
/// ever reach the middleware's own file reader.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnauthenticatedAction {
    /// Browsers are redirected to sign in; other clients get 401.
    #[default]
    RedirectToLoginPage,
    /// The request goes through without identity headers.
    AllowAnonymous,
    Return401,
    Return403,
    Return404,
}

impl UnauthenticatedAction {
    /// The status code a rejecting action answers with; `None` for redirect and pass-through.
    pub fn rejection_status(self) -> Option<u16> {
        match self {
            UnauthenticatedAction::Return401 => Some(401),
            UnauthenticatedAction::Return403 => Some(403),
            UnauthenticatedAction::Return404 => Some(404),
            UnauthenticatedAction::RedirectToLoginPage | UnauthenticatedAction::AllowAnonymous => {
                None
            }
        }
    }
}

impl Spelled for UnauthenticatedAction {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("RedirectToLoginPage", Self::RedirectToLoginPage),
        ("AllowAnonymous", Self::AllowAnonymous),
        ("Return401", Self::Return401),
        ("Return403", Self::Return403),
        ("Return404", Self::Return404),
        ("RejectWith401", Self::Return401),
        ("RejectWith404", Self::Return404),
    ];
    const NUMBERS: &'static [(u64, Self)] = &[
        (0, Self::RedirectToLoginPage),
        (1, Self::AllowAnonymous),
        (2, Self::Return401),
        (3, Self::Return404),
        (4, Self::Return403),
    ];
    fn canonical(self) -> &'static str {
        match self {
            Self::RedirectToLoginPage => "RedirectToLoginPage",
            Self::AllowAnonymous => "AllowAnonymous",
            Self::Return401 => "Return401",
            Self::Return403 => "Return403",
            Self::Return404 => "Return404",
        }
    }
}
spelled_serde!(UnauthenticatedAction);

/// `httpSettings.forwardProxy.convention`: which headers say what the public host and scheme are.
/// Integers: `0` NoProxy, `1` Standard, `2` Custom (the order every source lists them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ForwardProxyConvention {
    /// Use the request's own `Host` and scheme.
    #[default]
    NoProxy,
    /// Trust `X-Forwarded-Host` / `X-Forwarded-Proto`.
    Standard,
    /// Trust the headers named by `customHostHeaderName` / `customProtoHeaderName`.
    Custom,
}

impl Spelled for ForwardProxyConvention {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("NoProxy", Self::NoProxy),
        ("Standard", Self::Standard),
        ("Custom", Self::Custom),
    ];
    const NUMBERS: &'static [(u64, Self)] =
        &[(0, Self::NoProxy), (1, Self::Standard), (2, Self::Custom)];
    fn canonical(self) -> &'static str {
        match self {
            Self::NoProxy => "NoProxy",
            Self::Standard => "Standard",
            Self::Custom => "Custom",
        }
    }
}
spelled_serde!(ForwardProxyConvention);

/// `login.cookieExpiration.convention`. `IdentityDerived` is the file-format docs' spelling of
/// `IdentityProviderDerived`. Integers: `0` FixedTime (confirmed by HAJEK), `1` IdentityProviderDerived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CookieExpirationConvention {
    /// The session lasts `timeToExpiration` from sign-in.
    #[default]
    FixedTime,
    /// The session lasts as long as the identity provider's token.
    IdentityProviderDerived,
}

impl Spelled for CookieExpirationConvention {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("FixedTime", Self::FixedTime),
        ("IdentityProviderDerived", Self::IdentityProviderDerived),
        ("IdentityDerived", Self::IdentityProviderDerived),
    ];
    const NUMBERS: &'static [(u64, Self)] =
        &[(0, Self::FixedTime), (1, Self::IdentityProviderDerived)];
    fn canonical(self) -> &'static str {
        match self {
            Self::FixedTime => "FixedTime",
            Self::IdentityProviderDerived => "IdentityProviderDerived",
        }
    }
}
spelled_serde!(CookieExpirationConvention);

/// `customOpenIdConnectProviders.<name>.registration.clientCredential.method`; the only member
/// the service defines (integer `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientCredentialMethod {
    #[default]
    ClientSecretPost,
}

impl Spelled for ClientCredentialMethod {
    const NAMES: &'static [(&'static str, Self)] = &[("ClientSecretPost", Self::ClientSecretPost)];
    const NUMBERS: &'static [(u64, Self)] = &[(0, Self::ClientSecretPost)];
    fn canonical(self) -> &'static str {
        "ClientSecretPost"
    }
}
spelled_serde!(ClientCredentialMethod);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(v: serde_json::Value) -> Result<UnauthenticatedAction, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn every_action_spelling() {
        use UnauthenticatedAction::*;
        let cases = [
            (json!("RedirectToLoginPage"), RedirectToLoginPage),
            (json!("allowanonymous"), AllowAnonymous),
            (json!("Return401"), Return401),
            (json!("REJECTWITH401"), Return401),
            (json!("Return403"), Return403),
            (json!("Return404"), Return404),
            (json!("RejectWith404"), Return404),
            (json!(0), RedirectToLoginPage),
            (json!(1), AllowAnonymous),
            (json!(2), Return401),
            (json!(3), Return404),
            (json!(4), Return403),
        ];
        for (input, expected) in cases {
            assert_eq!(action(input.clone()), Ok(expected), "{input}");
        }
    }

    #[test]
    fn bad_action_lists_the_spellings() {
        let err = action(json!("Return402")).expect_err("not a member");
        assert!(err.contains("RejectWith404"), "{err}");
        assert!(err.contains("found \"Return402\""), "{err}");
        let err = action(json!(9)).expect_err("out of range");
        assert!(err.contains("0-4") && err.contains("found 9"), "{err}");
        assert!(action(json!(-1)).is_err());
        assert!(action(json!(true)).is_err());
    }

    #[test]
    fn other_enums() {
        let c: CookieExpirationConvention =
            serde_json::from_value(json!("IdentityDerived")).expect("file spelling");
        assert_eq!(c, CookieExpirationConvention::IdentityProviderDerived);
        let p: ForwardProxyConvention = serde_json::from_value(json!(2)).expect("number");
        assert_eq!(p, ForwardProxyConvention::Custom);
        assert_eq!("standard".parse(), Ok(ForwardProxyConvention::Standard));
        assert_eq!(
            serde_json::to_value(CookieExpirationConvention::IdentityProviderDerived).ok(),
            Some(json!("IdentityProviderDerived"))
        );
    }
}
