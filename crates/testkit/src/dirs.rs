//! Temporary directories for data dirs, CA files and databases.

use std::ops::Deref;
use std::path::Path;

/// A fresh directory under the system temp dir, removed with everything in it on drop. It
/// dereferences to its [`Path`], so `&dir` and `dir.join(..)` work where a path is expected.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

/// A new [`TempDir`] whose name starts with `easyauth-<label>-` (to tell leftovers apart).
///
/// # Panics
/// When the directory cannot be created.
pub fn temp_dir(label: &str) -> TempDir {
    TempDir(
        tempfile::Builder::new()
            .prefix(&format!("easyauth-{label}-"))
            .tempdir()
            .expect("a temporary directory"),
    )
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}
