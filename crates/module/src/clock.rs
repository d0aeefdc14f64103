//! The module's clock (Unix seconds) and the timestamp format App Service writes for tokens.

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `expires_on` as App Service writes it: ISO 8601 UTC with seven fractional digits.
pub(crate) fn expires_on(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    // Every date between 1970 and 9999 formats; the epoch stands in for anything else.
    t.format(f)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.0000000Z".to_owned())
}
