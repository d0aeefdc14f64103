//! The directory a server starts with: the directory file it was given, or else the built-in
//! demo tenant with this store's generated secrets.

use std::path::Path;

use easyauth_store::{Store, StoreError};

use super::demo::{self, DemoSecrets};
use super::seed::{DirectoryError, Seed};

/// The starting directory, and the demo tenant's secrets when it is the demo tenant.
#[derive(Debug, Clone)]
pub struct InitialDirectory {
    pub seed: Seed,
    pub demo: Option<DemoSecrets>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitialDirectoryError {
    /// The directory file cannot be read or is invalid.
    #[error(transparent)]
    File(#[from] DirectoryError),
    /// The demo tenant's secrets cannot be read or kept.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InitialDirectory {
    /// The directory file at `file` (its unknown fields logged as warnings), or the demo tenant.
    pub async fn file_or_demo(
        file: Option<&Path>,
        store: &dyn Store,
    ) -> Result<InitialDirectory, InitialDirectoryError> {
        match file {
            Some(path) => {
                let seed = Seed::load(path)?;
                for field in &seed.ignored_fields {
                    tracing::warn!(file = %path.display(), path = %field, "unknown field in the directory file was ignored");
                }
                Ok(InitialDirectory { seed, demo: None })
            }
            None => {
                let secrets = demo::secrets(store).await?;
                Ok(InitialDirectory {
                    seed: demo::seed(&secrets),
                    demo: Some(secrets),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_file_the_demo_tenant_keeps_its_secrets_per_store() {
        let store = easyauth_store::MemoryStore::new();
        let first = InitialDirectory::file_or_demo(None, &store)
            .await
            .expect("demo");
        let again = InitialDirectory::file_or_demo(None, &store)
            .await
            .expect("demo");
        let (Some(a), Some(b)) = (&first.demo, &again.demo) else {
            panic!("the demo tenant comes with its secrets");
        };
        assert_eq!(a.user_password, b.user_password);
        assert_eq!(first.seed.tenant.domain, demo::TENANT_DOMAIN);
    }

    #[tokio::test]
    async fn a_file_is_loaded_and_its_errors_name_it() {
        let store = easyauth_store::MemoryStore::new();
        let dir = std::env::temp_dir().join(format!("easyauth-initial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("directory.json");
        std::fs::write(
            &file,
            r#"{"tenant":{"id":"b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b","domain":"fabrikam.onmicrosoft.com"}}"#,
        )
        .expect("write");
        let loaded = InitialDirectory::file_or_demo(Some(&file), &store)
            .await
            .expect("file");
        assert!(loaded.demo.is_none());
        assert_eq!(loaded.seed.tenant.domain, "fabrikam.onmicrosoft.com");

        std::fs::write(&file, "{").expect("write");
        let error = InitialDirectory::file_or_demo(Some(&file), &store)
            .await
            .expect_err("invalid file");
        assert!(matches!(error, InitialDirectoryError::File(_)));
        assert!(error.to_string().contains("directory.json"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
