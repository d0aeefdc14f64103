//! The sign-in, consent, device-code, error, sign-out and form_post pages: plain HTML that works
//! without JavaScript. Every interpolated value is escaped.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

const STYLE: &str = "body{font-family:Segoe UI,system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:24px;font-weight:600;margin:0 0 16px}label{display:block;margin:12px 0 4px}\
input[type=text],input[type=email],input[type=password]{width:100%;padding:6px;font-size:15px;box-sizing:border-box}\
button{background:#0067b8;color:#fff;border:0;padding:8px 24px;font-size:15px;margin:16px 8px 0 0;cursor:pointer}\
button.secondary{background:#ccc;color:#000}.error{color:#e81123}.app{font-weight:600}ul{padding-left:20px}\
small{color:#666}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        text(title)
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        attr(name),
        attr(value)
    )
}

pub(crate) struct SignIn<'a> {
    pub(crate) action: &'a str,
    pub(crate) ctx: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) app_name: &'a str,
    pub(crate) tenant_name: &'a str,
    pub(crate) login_hint: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
}

pub(crate) fn sign_in(p: &SignIn<'_>) -> String {
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", text(e)))
        .unwrap_or_default();
    page(
        "Sign in to your account",
        &format!(
            "<h1>Sign in</h1><p>to continue to <span class=\"app\">{app}</span></p>{error}\
<form method=\"post\" action=\"{action}\">{ctx}{csrf}\
<label for=\"login\">Email, phone, or Skype</label><input type=\"email\" id=\"login\" name=\"login\" value=\"{hint}\" autocomplete=\"username\" required autofocus>\
<label for=\"passwd\">Password</label><input type=\"password\" id=\"passwd\" name=\"passwd\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form><p><small>{tenant} &middot; easyauth local identity provider</small></p>",
            app = text(p.app_name),
            action = attr(p.action),
            ctx = hidden("ctx", p.ctx),
            csrf = hidden("csrf", p.csrf),
            hint = attr(p.login_hint.unwrap_or("")),
            tenant = text(p.tenant_name),
        ),
    )
}

pub(crate) struct Permission {
    pub(crate) resource: String,
    pub(crate) value: String,
    pub(crate) description: String,
}

impl Permission {
    /// `value` of `resource`, described as its consent text describes it.
    pub(crate) fn of(resource: &crate::directory::Application, value: &str) -> Permission {
        Permission {
            resource: resource.display_name.clone(),
            value: value.to_owned(),
            description: resource
                .scope_by_value(value)
                .and_then(|s| {
                    s.user_consent_display_name
                        .clone()
                        .or_else(|| s.admin_consent_display_name.clone())
                })
                .unwrap_or_else(|| value.to_owned()),
        }
    }
}

pub(crate) struct Consent<'a> {
    pub(crate) action: &'a str,
    pub(crate) ctx: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) app_name: &'a str,
    pub(crate) user: &'a str,
    pub(crate) permissions: &'a [Permission],
}

pub(crate) fn consent(p: &Consent<'_>) -> String {
    let items = permission_items(p.permissions);
    page(
        "Permissions requested",
        &format!(
            "<p><small>{user}</small></p><h1>Permissions requested</h1><p><span class=\"app\">{app}</span> would like to:</p>\
<ul>{items}</ul><p><small>Accepting allows this app to use your data as described. You can change these permissions later.</small></p>\
<form method=\"post\" action=\"{action}\">{ctx}{csrf}\
<button type=\"submit\" name=\"consent\" value=\"accept\">Accept</button>\
<button type=\"submit\" name=\"consent\" value=\"deny\" class=\"secondary\">Cancel</button></form>",
            user = text(p.user),
            app = text(p.app_name),
            action = attr(p.action),
            ctx = hidden("ctx", p.ctx),
            csrf = hidden("csrf", p.csrf),
        ),
    )
}

fn permission_items(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|perm| {
            format!(
                "<li><strong>{}</strong> <small>({} &middot; {})</small></li>",
                text(&perm.description),
                text(&perm.value),
                text(&perm.resource)
            )
        })
        .collect()
}

pub(crate) struct DeviceCodeEntry<'a> {
    pub(crate) action: &'a str,
    pub(crate) csrf: &'a str,
    /// What to show in the field (a code given in the link, or the one just typed).
    pub(crate) user_code: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// The device-code page (`verification_uri`): where a person types the code their device shows.
pub(crate) fn device_code_entry(p: &DeviceCodeEntry<'_>) -> String {
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", text(e)))
        .unwrap_or_default();
    page(
        "Enter code",
        &format!(
            "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{error}\
<form method=\"post\" action=\"{action}\">{csrf}\
<label for=\"user_code\">Code</label><input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{code}\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" required autofocus>\
<button type=\"submit\">Next</button></form><p><small>easyauth local identity provider</small></p>",
            action = attr(p.action),
            csrf = hidden("csrf", p.csrf),
            code = attr(p.user_code),
        ),
    )
}

pub(crate) struct DeviceConfirm<'a> {
    pub(crate) action: &'a str,
    pub(crate) ctx: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) app_name: &'a str,
    /// The signed-in account, if any.
    pub(crate) user: Option<&'a str>,
    pub(crate) permissions: &'a [Permission],
}

/// "Are you trying to sign in to ...?": the step that makes a person check which application
/// the code belongs to before their sign-in goes to a device they may not control.
pub(crate) fn device_confirm(p: &DeviceConfirm<'_>) -> String {
    let user = p
        .user
        .map(|u| format!("<p><small>{}</small></p>", text(u)))
        .unwrap_or_default();
    let items = if p.permissions.is_empty() {
        String::new()
    } else {
        format!(
            "<p>It will be able to:</p><ul>{}</ul>",
            permission_items(p.permissions)
        )
    };
    page(
        "Are you trying to sign in?",
        &format!(
            "{user}<h1>Are you trying to sign in to <span class=\"app\">{app}</span>?</h1>\
<p>Only continue if you downloaded the app from a store or website that you trust, and you started this sign-in yourself.</p>{items}\
<form method=\"post\" action=\"{action}\">{ctx}{csrf}\
<button type=\"submit\" name=\"confirm\" value=\"continue\">Continue</button>\
<button type=\"submit\" name=\"confirm\" value=\"cancel\" class=\"secondary\">Cancel</button></form>",
            app = text(p.app_name),
            action = attr(p.action),
            ctx = hidden("ctx", p.ctx),
            csrf = hidden("csrf", p.csrf),
        ),
    )
}

pub(crate) fn device_done(app_name: &str) -> String {
    page(
        "Signed in",
        &format!(
            "<h1>{app}</h1><p>You have signed in to the <span class=\"app\">{app}</span> application on your device. You may now close this window.</p>",
            app = text(app_name)
        ),
    )
}

pub(crate) fn device_declined(app_name: &str) -> String {
    page(
        "Sign-in cancelled",
        &format!(
            "<h1>Sign-in cancelled</h1><p>You did not sign in to <span class=\"app\">{}</span> on your device. You may now close this window.</p>",
            text(app_name)
        ),
    )
}

pub(crate) fn error(message: &str) -> String {
    page(
        "Sign in error",
        &format!(
            "<h1>Sorry, but we're having trouble signing you in.</h1><p class=\"error\">{}</p>",
            text(message)
        ),
    )
}

pub(crate) fn signed_out() -> String {
    page(
        "Signed out",
        "<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>",
    )
}

/// The `form_post` response: a form the browser submits to the app (automatically where
/// scripts run; with the button otherwise).
pub(crate) fn form_post(redirect_uri: &str, fields: &[(&str, String)]) -> String {
    let inputs: String = fields.iter().map(|(k, v)| hidden(k, v)).collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Working...</title></head>\
<body onload=\"document.forms[0].submit()\"><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"></noscript></form></body></html>",
        attr(redirect_uri)
    )
}
