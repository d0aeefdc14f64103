//! `easyauth up`: a local App Service. Each web app runs behind its own authentication module
//! on its own loopback origin, with its app settings as environment variables and its own SCM
//! (Kudu) endpoint for zip deploys, next to the local Entra ID and a local Azure Resource
//! Manager through which the real `az`, and the `easyauth webapp` commands, change it while it
//! runs. State (web apps, settings, deployed code) lives in the data dir.

mod app;
pub mod applog;
mod auth;
pub mod azcli;
pub mod client;
pub mod explain;
mod kudu_host;
pub mod origin;
pub mod platform;
mod runtime;
mod seed;
pub mod site;
mod start_error;
mod startup;
pub mod state;
mod store;
pub mod supervisor;
pub mod tutorial;
