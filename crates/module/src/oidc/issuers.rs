//! Which `iss` values a Microsoft Entra configuration accepts.
//!
//! App Service accepts both the v1 and the v2 issuer of the configured tenant (inferred from the
//! tutorial: a back end configured with `https://sts.windows.net/<tid>/v2.0`
//! accepts the front end's v1 access token). v1 tokens say `https://sts.windows.net/<tid>/`, v2
//! tokens `https://login.microsoftonline.com/<tid>/v2.0`, whichever host the setting names.
//! Any other host (the local identity provider, `easyauth idp`) issues `<base>/<tid>/v2.0` and
//! `<base>/<tid>/`.

use url::Url;

/// The literal placeholder Entra's multi-tenant documents carry in `issuer`; the validator
/// substitutes the token's `tid` claim for it.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Hosts of the public Entra cloud whose tokens carry the canonical issuer forms.
const ENTRA_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
];

/// The issuers accepted for an Entra `openIdIssuer` (or a discovered issuer): `[v2, v1]`.
///
/// The tenant segment is kept as written, so pass the discovered issuer (which names the tenant
/// GUID) rather than a domain-name authority. Multi-tenant authorities (`common`,
/// `organizations`) map to the `{tenantid}` template forms. A value that is not an
/// `https://host/<tenant>[/v2.0]` URL is returned unchanged, alone.
pub fn aad_issuers(open_id_issuer: &str) -> Vec<String> {
    let unchanged = || vec![open_id_issuer.to_owned()];
    let Ok(url) = Url::parse(open_id_issuer) else {
        return unchanged();
    };
    let Some(host) = url.host_str() else {
        return unchanged();
    };
    let mut segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if segments
        .last()
        .is_some_and(|s| s.eq_ignore_ascii_case("v2.0"))
    {
        segments.pop();
    }
    let Some(tenant) = segments.pop() else {
        return unchanged();
    };
    let tenant = match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" => TENANT_PLACEHOLDER.to_owned(),
        _ => tenant.to_owned(),
    };
    let host = host.to_ascii_lowercase();
    if ENTRA_HOSTS.contains(&host.as_str()) {
        return vec![
            format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            format!("https://sts.windows.net/{tenant}/"),
        ];
    }
    let mut base = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        base.push_str(&format!(":{port}"));
    }
    for segment in segments {
        base.push('/');
        base.push_str(segment);
    }
    vec![format!("{base}/{tenant}/v2.0"), format!("{base}/{tenant}/")]
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b";

    fn entra() -> Vec<String> {
        vec![
            format!("https://login.microsoftonline.com/{TID}/v2.0"),
            format!("https://sts.windows.net/{TID}/"),
        ]
    }

    #[test]
    fn every_entra_form_maps_to_both_versions() {
        for configured in [
            format!("https://sts.windows.net/{TID}/"),
            format!("https://sts.windows.net/{TID}/v2.0"),
            format!("https://sts.windows.net/{TID}/v2.0/"),
            format!("https://login.microsoftonline.com/{TID}/v2.0"),
            format!("https://login.microsoftonline.com/{TID}"),
            format!("https://login.windows.net/{TID}/"),
            format!("https://LOGIN.microsoftonline.com/{TID}/V2.0"),
        ] {
            assert_eq!(aad_issuers(&configured), entra(), "{configured}");
        }
    }

    #[test]
    fn local_identity_provider_keeps_its_base() {
        let v2 = format!("https://127.0.0.1:5443/{TID}/v2.0");
        let v1 = format!("https://127.0.0.1:5443/{TID}/");
        assert_eq!(aad_issuers(&v2), vec![v2.clone(), v1.clone()]);
        assert_eq!(aad_issuers(&v1), vec![v2, v1]);
        assert_eq!(
            aad_issuers(&format!("https://idp.test/entra/{TID}/v2.0")),
            vec![
                format!("https://idp.test/entra/{TID}/v2.0"),
                format!("https://idp.test/entra/{TID}/")
            ]
        );
    }

    #[test]
    fn multi_tenant_authorities_become_templates() {
        assert_eq!(
            aad_issuers("https://login.microsoftonline.com/common/v2.0"),
            vec![
                "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
                "https://sts.windows.net/{tenantid}/".to_owned()
            ]
        );
    }

    #[test]
    fn non_authority_values_are_kept() {
        assert_eq!(aad_issuers("https://idp.test"), vec!["https://idp.test"]);
        assert_eq!(aad_issuers("not a url"), vec!["not a url"]);
    }
}
