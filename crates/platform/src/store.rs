//! The platform's SQLite stores: its own (the identity provider's and the runtime's state) and
//! one per site's token store. Its own module so that the runtime, which opens a site's store
//! on creation, does not import the start-up steps that import it.

use std::path::Path;
use std::sync::Arc;

use easyauth_store::{SqliteStore, Store};

use crate::start_error::StartError;

/// Opens (creating if needed) the SQLite store at `path`.
pub(crate) async fn open_store(path: &Path) -> Result<Arc<dyn Store>, StartError> {
    let store = SqliteStore::open(path)
        .await
        .map_err(|e| StartError::Io(format!("{}: {e}", path.display())))?;
    Ok(Arc::new(store))
}
