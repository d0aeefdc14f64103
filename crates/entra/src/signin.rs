//! Checking a password typed on a sign-in page, with Entra's smart lockout: wrong passwords are
//! counted per account (the name typed, whether or not it exists, so a lockout reveals nothing
//! about which accounts exist), kept in the store so every instance sharing it agrees, and after
//! the tenant's threshold further attempts are refused for the lockout duration, even with the
//! right password. A successful sign-in clears the count.
//!
//! Every page that takes a password (the authorize flow's sign-in form, the device-code page)
//! goes through [`check_password`], so none can skip a rule.

use serde::{Deserialize, Serialize};

use crate::Idp;
use crate::directory::{Directory, User};
use crate::session::SignInSession;
use crate::util::{now, sha256_hex};

const LOCKOUT_KIND: &str = "signin-lockout";
/// Failures are forgotten this long after the last one.
const FAILURE_MEMORY: i64 = 3600;

/// Why a password sign-in did not succeed; `Display` is what the sign-in page shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignInFailure {
    #[error("Your account or password is incorrect. (AADSTS50126)")]
    BadCredentials,
    #[error(
        "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password. Try again in {0} seconds. (AADSTS50053)"
    )]
    Locked(i64),
    #[error(
        "Your account has been locked. Contact your support person to unlock it. (AADSTS50057)"
    )]
    Disabled,
    #[error("Sign-in is unavailable: {0}")]
    Unavailable(String),
}

/// Which step of a flow a request comes from: a form that was just submitted satisfies the step
/// it stands for, and nothing else.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInStep {
    /// Only the session cookie speaks for the user.
    #[default]
    Session,
    /// The consent form, shortly after a sign-in: that sign-in satisfies `prompt=login`, but the
    /// request's `login_hint` must still name the signed-in account.
    Recent,
    /// The sign-in form was just submitted: the user typed the account and password.
    Typed,
}

/// What the request says about who may be signed in.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SignInRule<'a> {
    /// `prompt=login` or `prompt=select_account`: the session alone is not enough.
    pub(crate) fresh: bool,
    pub(crate) login_hint: Option<&'a str>,
}

/// The signed-in user, if the session satisfies the rule (fresh sign-in, `login_hint`, an enabled
/// account); `None` means the user must sign in. Every page of every flow applies this rule.
pub(crate) fn signed_in_user<'d>(
    dir: &'d Directory,
    session: Option<&SignInSession>,
    rule: SignInRule<'_>,
    step: SignInStep,
) -> Option<&'d User> {
    let user = session
        .and_then(|s| dir.user(&s.user_id))
        .filter(|u| u.account_enabled)?;
    let hint_mismatch = rule
        .login_hint
        .is_some_and(|hint| !hint.eq_ignore_ascii_case(&user.user_principal_name));
    let must_sign_in = match step {
        SignInStep::Typed => false,
        SignInStep::Recent => hint_mismatch,
        SignInStep::Session => rule.fresh || hint_mismatch,
    };
    (!must_sign_in).then_some(user)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Failures {
    count: u32,
    locked_until: i64,
}

fn account_key(dir: &Directory, login: &str) -> String {
    sha256_hex(format!("{}\n{}", dir.tenant.id, login.trim().to_ascii_lowercase()).as_bytes())
}

/// The user whose name and password these are, unless the account is locked out, disabled, or
/// the password is wrong.
pub(crate) async fn check_password(
    idp: &Idp,
    dir: &Directory,
    login: &str,
    password: String,
) -> Result<User, SignInFailure> {
    let key = account_key(dir, login);
    if let Some(seconds) = locked_for(idp, &key).await? {
        tracing::warn!(account = %crate::util::clip(login, 100), seconds, "sign-in refused: the account is locked (smart lockout)");
        return Err(SignInFailure::Locked(seconds));
    }
    let user = dir.user_by_upn(login).cloned();
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    // PBKDF2 is deliberately slow: keep it off the async workers. Unknown users cost the same.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => crate::credentials::verify_password(&h, &password),
        None => {
            let _ = crate::credentials::verify_password(
                &crate::credentials::hash_password("x"),
                &password,
            );
            false
        }
    })
    .await
    .unwrap_or(false);
    match user.filter(|_| ok) {
        Some(user) if !user.account_enabled => Err(SignInFailure::Disabled),
        Some(user) => {
            if let Err(e) = idp.store.delete_ephemeral(LOCKOUT_KIND, &key).await {
                tracing::warn!(error = %e, "could not clear the sign-in failure count");
                crate::metrics::store_error();
            }
            Ok(user)
        }
        None => Err(record_failure(idp, dir, login, &key).await?),
    }
}

async fn locked_for(idp: &Idp, key: &str) -> Result<Option<i64>, SignInFailure> {
    let failures = read(idp, key).await?;
    let left = failures.locked_until - now();
    Ok((left > 0).then_some(left))
}

async fn read(idp: &Idp, key: &str) -> Result<Failures, SignInFailure> {
    let json = idp
        .store
        .get_ephemeral(LOCKOUT_KIND, key, now())
        .await
        .map_err(|e| SignInFailure::Unavailable(e.to_string()))?;
    // A record that does not parse is a failure, not a clean slate: reading it as zero wrong
    // passwords would lift a lockout.
    json.map_or(Ok(Failures::default()), |j| {
        serde_json::from_str(&j).map_err(|e| SignInFailure::Unavailable(e.to_string()))
    })
}

/// Counts a wrong password; the failure that reaches the threshold locks the account.
async fn record_failure(
    idp: &Idp,
    dir: &Directory,
    login: &str,
    key: &str,
) -> Result<SignInFailure, SignInFailure> {
    let rules = dir.tenant.lockout();
    // Read-modify-write under a lock, so concurrent wrong passwords are all counted.
    let _guard = idp.lockout_lock.lock().await;
    let mut failures = read(idp, key).await?;
    failures.count = failures.count.saturating_add(1);
    let locked = failures.count >= rules.lockout_threshold;
    if locked {
        failures.locked_until = now() + i64::from(rules.lockout_duration_in_seconds);
        tracing::warn!(
            account = %crate::util::clip(login, 100),
            failures = failures.count,
            seconds = rules.lockout_duration_in_seconds,
            "smart lockout: too many wrong passwords, the account is locked"
        );
    }
    let json =
        serde_json::to_string(&failures).map_err(|e| SignInFailure::Unavailable(e.to_string()))?;
    idp.store
        .put_ephemeral(
            LOCKOUT_KIND,
            key,
            &json,
            failures.locked_until.max(now()) + FAILURE_MEMORY,
        )
        .await
        .map_err(|e| SignInFailure::Unavailable(e.to_string()))?;
    Ok(if locked {
        SignInFailure::Locked(i64::from(rules.lockout_duration_in_seconds))
    } else {
        SignInFailure::BadCredentials
    })
}
