//! What can stop `easyauth up` from starting; shared by the platform and its start-up steps.

use easyauth_entra::InitialDirectoryError;

/// Start-up failures; `Display` is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Config(String),
    #[error("app {app}: {reason}")]
    App { app: String, reason: String },
}

impl From<InitialDirectoryError> for StartError {
    fn from(e: InitialDirectoryError) -> StartError {
        match e {
            InitialDirectoryError::File(e) => StartError::Config(e.to_string()),
            InitialDirectoryError::Store(e) => StartError::Io(e.to_string()),
        }
    }
}

pub(crate) fn io(context: &str) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |e| StartError::Io(format!("{context}: {e}"))
}
