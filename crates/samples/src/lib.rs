//! The two sample apps of Microsoft's tutorial "Authenticate and authorize users end-to-end in
//! Azure App Service", in Rust, for `easyauth up`.
//!
//! * [`frontend`]: a web app behind App Service authentication that calls the back end with the
//!   signed-in user's access token (`X-MS-TOKEN-AAD-ACCESS-TOKEN`) and shows the answer.
//! * [`backend`]: an API behind App Service authentication that answers with the user's profile,
//!   optionally from Microsoft Graph via the on-behalf-of flow.
//!
//! Both read their settings from the environment exactly as App Service provides them
//! ([`common::Settings`]) and decode tokens without verifying them, as the Node samples do: the
//! authentication module in front of each app has already validated them.

pub mod backend;
pub mod common;
pub mod frontend;
