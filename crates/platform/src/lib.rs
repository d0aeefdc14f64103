//! `easyauth up`: a local App Service. Each app of a site runs behind its own authentication
//! module on its own loopback origin, with its app settings as environment variables, next to the
//! local Entra ID; the admin API and the az-style `webapp` commands change auth settings and app
//! settings while it runs.

pub mod admin;
mod app;
mod auth;
pub mod client;
pub mod control;
pub mod explain;
pub mod origin;
pub mod platform;
pub mod site;
mod startup;
pub mod state;
pub mod supervisor;
pub mod tutorial;
