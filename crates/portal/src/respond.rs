//! The answers every part of the portal gives the same way: an error page, a redirect after a
//! write, the CSRF refusal. A leaf module, so the form reader and the sign-in can use them
//! without importing the blades that import those.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::html::{esc, page};

pub(crate) fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form is not from this portal session (missing or wrong CSRF token). Reload the page and try again.",
    )
}

pub(crate) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(page(
            "Something went wrong",
            None,
            &[("Home", "/".to_owned())],
            &format!("<div class=\"error\">{}</div>", esc(message)),
        )),
    )
        .into_response()
}
