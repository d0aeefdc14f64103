//! The few async constructors the targets need (keys loaded through a store), run once.

use std::future::Future;

/// Runs `future` to completion on a throwaway current-thread runtime.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    // Without a runtime no target can run at all; failing loudly is the only useful answer.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the fuzz targets' key setup")
        .block_on(future)
}
