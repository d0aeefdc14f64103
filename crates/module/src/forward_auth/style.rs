//! The proxy styles a check can be asked in, by the last segment of its path. A leaf: the
//! dispatcher, the parser of the original request and the answer shaping all read it.

/// How a proxy style asks and what answers it understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// nginx `auth_request`: `X-Original-URI` / `X-Original-Method`; 2xx, 401 or 403 only.
    Nginx,
    /// Caddy `forward_auth` and Traefik ForwardAuth: `X-Forwarded-Method`, `-Proto`, `-Host`,
    /// `-Uri`; any non-2xx answer goes to the client as it is.
    Forwarded,
    /// Envoy `ext_authz` over HTTP: the original method, the original path after the check
    /// prefix, the original Host; only 200 allows, other answers go to the client.
    Envoy,
}

/// The check endpoints, by the last segment of `<apiPrefix>/forward/<style>`.
pub(crate) const STYLES: &[(&str, Style)] = &[
    ("nginx", Style::Nginx),
    ("caddy", Style::Forwarded),
    ("traefik", Style::Forwarded),
    ("envoy", Style::Envoy),
];
