//! The platform's stores: its own (SQLite, or PostgreSQL when given a URL) (the identity provider's and the runtime's state) and
//! one per site's token store. Its own module so that the runtime, which opens a site's store
//! on creation, does not import the start-up steps that import it.

use std::path::Path;
use std::sync::Arc;

use easyauth_store::{PostgresStore, SqliteStore, Store};

use crate::start_error::StartError;

/// Opens (creating if needed) the SQLite store at `path`.
pub(crate) async fn open_store(path: &Path) -> Result<Arc<dyn Store>, StartError> {
    let store = SqliteStore::open(path)
        .await
        .map_err(|e| StartError::Io(format!("{}: {e}", path.display())))?;
    Ok(Arc::new(store))
}

/// Opens the PostgreSQL store at `url`. Unlike `easyauth idp`, `up` is one process a person
/// starts by hand: an unreachable database stops it with the reason (the URL without its
/// password) instead of waiting.
pub(crate) async fn open_postgres(url: &str) -> Result<Arc<dyn Store>, StartError> {
    let store = PostgresStore::open(url)
        .await
        .map_err(|e| StartError::Io(format!("the store: {e}")))?;
    Ok(Arc::new(store))
}
