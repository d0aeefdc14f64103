//! The `authV2` extension for the Azure CLI, packaged so that `easyauth up` can serve it offline.
//!
//! Microsoft's tutorial runs `az extension add --name authV2` and then `az webapp auth show|set`.
//! Microsoft's own wheel is not on PyPI, so easyauth ships its own extension with the same name,
//! commands and arguments, written from scratch in Python (`python/azext_authv2`). This crate
//! embeds those sources, builds the wheel in memory (deterministically: fixed timestamps and
//! order, so the digest in the index never changes for given sources), and writes the extension
//! index az reads.
//!
//! How az finds it: the cloud's `azmirrorStorageAccountResourceId` endpoint, say `<m>`, makes az
//! read `<m>/extensions/index.json` and download `<m>/extensions/<wheel filename>`, checking the
//! `sha256Digest` and `azext.minCliCoreVersion` from the index before installing with pip.

use std::io::{Cursor, Write};
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// The extension's name, as in `az extension add --name authV2`.
pub const EXTENSION_NAME: &str = "authV2";
/// The wheel's version. Bump it whenever a Python file changes, so that `az extension update`
/// sees a newer one.
pub const VERSION: &str = "0.2.0";
/// The Python package az imports (it loads the one `azext_*` folder of the installed extension).
pub const MODULE: &str = "azext_authv2";
/// One line for `az extension list-available`.
pub const SUMMARY: &str = "Manage App Service authentication (authsettingsV2) with az webapp auth: easyauth's implementation";

/// The extension's sources, as they go into the wheel.
const SOURCES: &[(&str, &str)] = &[
    (
        "azext_authv2/__init__.py",
        include_str!("../python/azext_authv2/__init__.py"),
    ),
    (
        "azext_authv2/_help.py",
        include_str!("../python/azext_authv2/_help.py"),
    ),
    (
        "azext_authv2/_params.py",
        include_str!("../python/azext_authv2/_params.py"),
    ),
    (
        "azext_authv2/commands.py",
        include_str!("../python/azext_authv2/commands.py"),
    ),
    (
        "azext_authv2/custom.py",
        include_str!("../python/azext_authv2/custom.py"),
    ),
    ("azext_authv2/azext_metadata.json", AZEXT_METADATA),
];

/// What az reads from the installed extension (and, copied into the index, before installing):
/// `azext.minCliCoreVersion`, `azext.isPreview`.
const AZEXT_METADATA: &str = include_str!("../python/azext_authv2/azext_metadata.json");

/// A built wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    /// `authV2-<version>-py3-none-any.whl`: az takes the extension's name from it.
    pub filename: String,
    /// The zip file.
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of `bytes`, the index's `sha256Digest`.
    pub sha256: String,
}

static WHEEL: LazyLock<Wheel> = LazyLock::new(build_wheel);

/// The wheel (built once per process).
pub fn wheel() -> Wheel {
    WHEEL.clone()
}

/// The extension index (`<base_url>/index.json`) with the one entry for authV2.
///
/// `base_url` is the folder that serves both the index and the wheel, e.g.
/// `<azmirror endpoint>/extensions`; the wheel's `downloadUrl` is `<base_url>/<filename>`. (With
/// the azmirror endpoint az rebuilds that URL from the endpoint and the file name anyway; with
/// `AZURE_EXTENSION_INDEX_URL` it uses `downloadUrl` as is.)
pub fn index(base_url: &str) -> Value {
    let wheel = &*WHEEL;
    let mut metadata = azext_metadata();
    let extra = json!({
        "name": EXTENSION_NAME,
        "version": VERSION,
        "summary": SUMMARY,
        "license": "MIT",
        "metadata_version": "2.1",
        "generator": GENERATOR,
        "classifiers": CLASSIFIERS,
    });
    if let (Value::Object(metadata), Value::Object(extra)) = (&mut metadata, extra) {
        metadata.extend(extra);
    }
    json!({
        "formatVersion": "1",
        "extensions": {
            EXTENSION_NAME: [{
                "downloadUrl": format!("{}/{}", base_url.trim_end_matches('/'), wheel.filename),
                "filename": wheel.filename,
                "sha256Digest": wheel.sha256,
                "metadata": metadata,
            }]
        }
    })
}

const GENERATOR: &str = "easyauth-azext";
const CLASSIFIERS: &[&str] = &[
    "Programming Language :: Python :: 3",
    "License :: OSI Approved :: MIT License",
];

fn azext_metadata() -> Value {
    // The file is part of this crate and a unit test parses it, so this cannot fail at run time.
    serde_json::from_str(AZEXT_METADATA).unwrap_or_else(|_| json!({}))
}

fn dist_info() -> String {
    format!("{EXTENSION_NAME}-{VERSION}.dist-info")
}

fn metadata_file() -> String {
    let classifiers: String = CLASSIFIERS
        .iter()
        .map(|c| format!("Classifier: {c}\n"))
        .collect();
    // No Requires-Dist: az installs with pip, offline under `easyauth up`, and everything the
    // extension imports ships with az.
    format!(
        "Metadata-Version: 2.1\nName: {EXTENSION_NAME}\nVersion: {VERSION}\nSummary: {SUMMARY}\n\
         License: MIT\n{classifiers}Requires-Python: >=3.8\n\n\
         The az webapp auth commands on the authsettingsV2 resource, written for easyauth.\n"
    )
}

fn wheel_file() -> String {
    format!(
        "Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
}

/// `sha256=<urlsafe base64 without padding>` as in a wheel's RECORD.
fn record_hash(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256={}", URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The wheel's files in archive order, RECORD last.
fn wheel_entries() -> Vec<(String, Vec<u8>)> {
    let dist_info = dist_info();
    let mut entries: Vec<(String, Vec<u8>)> = SOURCES
        .iter()
        .map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec()))
        .collect();
    entries.push((
        format!("{dist_info}/METADATA"),
        metadata_file().into_bytes(),
    ));
    entries.push((format!("{dist_info}/WHEEL"), wheel_file().into_bytes()));
    entries.push((
        format!("{dist_info}/top_level.txt"),
        format!("{MODULE}\n").into_bytes(),
    ));
    let mut record: String = entries
        .iter()
        .map(|(path, bytes)| format!("{path},{},{}\n", record_hash(bytes), bytes.len()))
        .collect();
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    entries.push((format!("{dist_info}/RECORD"), record.into_bytes()));
    entries
}

fn build_wheel() -> Wheel {
    // Fixed time and mode: the bytes, hence the index's digest, depend on the sources only.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (path, bytes) in wheel_entries() {
        zip.start_file(path, options)
            .and_then(|()| zip.write_all(&bytes).map_err(Into::into))
            .expect("writing a zip to memory cannot fail");
    }
    let bytes = zip
        .finish()
        .expect("writing a zip to memory cannot fail")
        .into_inner();
    Wheel {
        filename: format!("{EXTENSION_NAME}-{VERSION}-py3-none-any.whl"),
        sha256: sha256_hex(&bytes),
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use super::*;

    fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let mut files = BTreeMap::new();
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).expect("an entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("readable");
            files.insert(file.name().expect("a UTF-8 name").into_owned(), content);
        }
        files
    }

    fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
        String::from_utf8(files.get(path).cloned().unwrap_or_default()).expect("utf-8")
    }

    #[test]
    fn the_wheel_is_a_zip_with_the_sources_and_a_dist_info() {
        let wheel = wheel();
        assert_eq!(wheel.filename, "authV2-0.2.0-py3-none-any.whl");
        let files = unzip(&wheel.bytes);
        for (path, source) in SOURCES {
            assert_eq!(files.get(*path).map(Vec::as_slice), Some(source.as_bytes()));
        }
        let dist_info = dist_info();
        for name in ["METADATA", "WHEEL", "top_level.txt", "RECORD"] {
            assert!(files.contains_key(&format!("{dist_info}/{name}")), "{name}");
        }
        assert_eq!(
            text(&files, &format!("{dist_info}/top_level.txt")),
            "azext_authv2\n"
        );
        // az loads exactly one azext_* package from the installed folder.
        let packages: std::collections::BTreeSet<_> = files
            .keys()
            .filter_map(|p| p.split('/').next())
            .filter(|top| top.starts_with("azext_"))
            .collect();
        assert_eq!(packages.into_iter().collect::<Vec<_>>(), [MODULE]);
        assert!(text(&files, &format!("{dist_info}/WHEEL")).contains("Tag: py3-none-any\n"));
    }

    #[test]
    fn record_lists_every_file_with_its_hash_and_size() {
        let files = unzip(&wheel().bytes);
        let record_path = format!("{}/RECORD", dist_info());
        let record = text(&files, &record_path);
        let mut listed = Vec::new();
        for line in record.lines() {
            let mut fields = line.rsplitn(3, ',');
            let (size, hash, path) = (
                fields.next().expect("size"),
                fields.next().expect("hash"),
                fields.next().expect("path"),
            );
            listed.push(path.to_owned());
            if path == record_path {
                assert_eq!((hash, size), ("", ""));
                continue;
            }
            let content = files.get(path).expect("a listed file exists");
            assert_eq!(hash, record_hash(content), "{path}");
            assert_eq!(size, content.len().to_string(), "{path}");
        }
        listed.sort();
        assert_eq!(listed, files.keys().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn metadata_and_index_agree() {
        let wheel = wheel();
        let files = unzip(&wheel.bytes);
        let metadata = text(&files, &format!("{}/METADATA", dist_info()));
        assert!(metadata.contains("\nName: authV2\n"), "{metadata}");
        assert!(metadata.contains(&format!("\nVersion: {VERSION}\n")));

        let index = index("https://127.0.0.1:1/azmirror/extensions/");
        assert_eq!(index["formatVersion"], "1");
        let entries = index["extensions"]["authV2"].as_array().expect("entries");
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry["filename"], wheel.filename.as_str());
        assert_eq!(
            entry["downloadUrl"],
            format!("https://127.0.0.1:1/azmirror/extensions/{}", wheel.filename)
        );
        assert_eq!(entry["sha256Digest"], wheel.sha256.as_str());
        assert_eq!(entry["metadata"]["name"], "authV2");
        assert_eq!(entry["metadata"]["version"], VERSION);
        assert_eq!(entry["metadata"]["summary"], SUMMARY);
        // The same minimum az checks before (index) and after (installed file) installing.
        let installed: Value = serde_json::from_slice(
            files
                .get("azext_authv2/azext_metadata.json")
                .expect("azext_metadata.json"),
        )
        .expect("JSON");
        assert_eq!(
            entry["metadata"]["azext.minCliCoreVersion"],
            installed["azext.minCliCoreVersion"]
        );
        assert_eq!(installed["azext.minCliCoreVersion"], "2.23.0");
        assert_eq!(entry["metadata"]["azext.isPreview"], false);
    }

    #[test]
    fn every_python_file_is_packaged() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/azext_authv2");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .expect("the sources")
            .flatten()
            .filter(|entry| entry.path().is_file())
            .map(|entry| format!("azext_authv2/{}", entry.file_name().to_string_lossy()))
            .filter(|path| !path.ends_with(".pyc"))
            .collect();
        on_disk.sort();
        let mut packaged: Vec<String> = SOURCES.iter().map(|(p, _)| (*p).to_owned()).collect();
        packaged.sort();
        assert_eq!(on_disk, packaged);
    }

    #[test]
    fn the_wheel_is_deterministic() {
        let first = build_wheel();
        let second = build_wheel();
        assert_eq!(first, second);
        assert_eq!(first.sha256, sha256_hex(&first.bytes));
        assert_eq!(first.sha256.len(), 64);
        assert_eq!(wheel(), first);
    }
}
