//! The portal's form bodies: at most 64 KiB and 200 fields, parsed once (linear).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;

use crate::respond::error_page;

const MAX_BYTES: usize = 64 * 1024;
const MAX_FIELDS: usize = 200;

/// A posted form: the first value of each name, and every value of repeated names.
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: HashMap<String, Vec<String>>,
}

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value posted under `name` (checkboxes), in order.
    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    /// The trimmed value, `None` when absent or blank.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

pub(crate) async fn read(body: axum::body::Body) -> Result<Form, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BYTES).await.map_err(|_| {
        error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than 64 KiB.",
        )
    })?;
    let mut form = Form::default();
    for (n, (k, v)) in form_urlencoded::parse(&bytes).enumerate() {
        if n >= MAX_FIELDS {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "The form has more than 200 fields.",
            ));
        }
        form.fields
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    Ok(form)
}
