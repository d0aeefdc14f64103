//! Checks and unpacks an uploaded zip into a fresh folder. Blocking: run it on the blocking pool.
//!
//! Refused, with a message naming the entry: names with a `..` component, absolute names,
//! drive letters, backslashes, NUL bytes; encrypted entries; the same file twice; more entries
//! than allowed; more unpacked bytes than allowed (counted while decompressing, so a header that
//! lies about sizes does not help a zip bomb); an entry that unpacks to more than its header
//! says; symlinks that are absolute or could lead outside the folder.
//!
//! Symlinks: a relative target made of leading `..` (no more than the link's depth) followed by
//! plain names is allowed (`node_modules/.bin/x -> ../x/cli.js`); every other target is
//! refused. Links are created after every file, and no entry may sit below a link, so nothing is
//! ever written through one. Together these keep every link's target inside the folder.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::Limits;

/// The longest symlink target read.
const MAX_LINK_TARGET: u64 = 4096;

/// Why a zip was refused: the message the client sees (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub(crate) String);

/// What was unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unpacked {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
}

enum Kind {
    Dir,
    File { executable: bool },
    Symlink,
}

struct Entry {
    index: usize,
    name: String,
    parts: Vec<String>,
    kind: Kind,
}

/// Checks `zip` and unpacks it into `dest` (created; must not exist). On `Err` the caller
/// removes `dest`.
pub(crate) fn unpack(zip: &Path, dest: &Path, limits: &Limits) -> Result<Unpacked, Refused> {
    let file = File::open(zip).map_err(|e| Refused(format!("cannot read the upload: {e}")))?;
    let mut archive = ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Refused(format!("the body is not a zip file ({e})")))?;
    if archive.len() > limits.max_entries {
        return Err(Refused(format!(
            "the zip has {} entries; at most {} are allowed",
            archive.len(),
            limits.max_entries
        )));
    }

    // Pass 1: names, kinds and declared sizes, from the central directory only.
    let mut entries = Vec::with_capacity(archive.len());
    let mut declared: u64 = 0;
    let mut seen_files: HashSet<Vec<String>> = HashSet::new();
    for index in 0..archive.len() {
        let data = archive
            .by_index_data(index)
            .map_err(|e| Refused(format!("entry #{index} cannot be read: {e}")))?;
        let name = data
            .name()
            .map_err(|e| Refused(format!("entry #{index} has an unreadable name: {e}")))?
            .into_owned();
        let parts = entry_path(&name).map_err(|why| Refused(format!("entry '{name}' {why}")))?;
        if data.encrypted() {
            return Err(Refused(format!(
                "entry '{name}' is encrypted; upload a zip without a password"
            )));
        }
        declared = declared.saturating_add(data.size());
        if declared > limits.max_unpacked_bytes {
            return Err(Refused(format!(
                "the zip unpacks to more than {} bytes (the limit), by its own headers; entry '{name}' passes it",
                limits.max_unpacked_bytes
            )));
        }
        let kind = if data.is_symlink() {
            Kind::Symlink
        } else if data.is_dir() {
            Kind::Dir
        } else {
            Kind::File {
                executable: data.unix_mode().is_some_and(|m| m & 0o111 != 0),
            }
        };
        if parts.is_empty() {
            // `./` and the like: the folder itself.
            if matches!(kind, Kind::Dir) {
                continue;
            }
            return Err(Refused(format!("entry '{name}' has no file name")));
        }
        if !matches!(kind, Kind::Dir) && !seen_files.insert(parts.clone()) {
            return Err(Refused(format!("entry '{name}' appears twice in the zip")));
        }
        entries.push(Entry {
            index,
            name,
            parts,
            kind,
        });
    }
    let links: HashSet<&[String]> = entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::Symlink))
        .map(|e| e.parts.as_slice())
        .collect();
    for entry in &entries {
        if (1..entry.parts.len()).any(|n| links.contains(&entry.parts[..n])) {
            return Err(Refused(format!(
                "entry '{}' is inside a symlink entry of the zip",
                entry.name
            )));
        }
    }

    // Pass 2: folders and files, counting what is really written.
    fs::create_dir_all(dest).map_err(|e| Refused(format!("cannot create the folder: {e}")))?;
    let mut written: u64 = 0;
    let mut files = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut symlinks = Vec::new();
    for entry in &entries {
        let path = join(dest, &entry.parts);
        match entry.kind {
            Kind::Dir => fs::create_dir_all(&path)
                .map_err(|e| Refused(format!("entry '{}' cannot be created: {e}", entry.name)))?,
            Kind::Symlink => symlinks.push(entry),
            Kind::File { executable } => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| {
                        Refused(format!("entry '{}' cannot be created: {e}", entry.name))
                    })?;
                }
                let mut zipped = archive
                    .by_index(entry.index)
                    .map_err(|e| Refused(format!("entry '{}' cannot be read: {e}", entry.name)))?;
                let declared_size = zipped.size();
                // create_new: never follow or replace something already there.
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(if executable { 0o755 } else { 0o644 })
                    .open(&path)
                    .map_err(|e| {
                        Refused(format!("entry '{}' cannot be created: {e}", entry.name))
                    })?;
                let mut this: u64 = 0;
                loop {
                    let n = zipped
                        .read(&mut buf)
                        .map_err(|e| Refused(format!("entry '{}' is corrupt: {e}", entry.name)))?;
                    if n == 0 {
                        break;
                    }
                    let n64 = n as u64;
                    this += n64;
                    written += n64;
                    if written > limits.max_unpacked_bytes {
                        return Err(Refused(format!(
                            "the zip unpacks to more than {} bytes (the limit); stopped at entry '{}'",
                            limits.max_unpacked_bytes, entry.name
                        )));
                    }
                    if this > declared_size {
                        return Err(Refused(format!(
                            "entry '{}' unpacks to more than the {declared_size} bytes its header says",
                            entry.name
                        )));
                    }
                    out.write_all(&buf[..n]).map_err(|e| {
                        Refused(format!("entry '{}' cannot be written: {e}", entry.name))
                    })?;
                }
                files += 1;
            }
        }
    }

    // Links last, so that no file above was written through one.
    for entry in symlinks {
        let mut target = String::new();
        archive
            .by_index(entry.index)
            .map_err(|e| Refused(format!("entry '{}' cannot be read: {e}", entry.name)))?
            .take(MAX_LINK_TARGET)
            .read_to_string(&mut target)
            .map_err(|e| Refused(format!("entry '{}' is corrupt: {e}", entry.name)))?;
        check_link(&entry.parts, &target).map_err(|why| {
            Refused(format!(
                "entry '{}' is a symlink to '{target}', which {why}",
                entry.name
            ))
        })?;
        let path = join(dest, &entry.parts);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Refused(format!("entry '{}' cannot be created: {e}", entry.name)))?;
        }
        std::os::unix::fs::symlink(&target, &path)
            .map_err(|e| Refused(format!("entry '{}' cannot be created: {e}", entry.name)))?;
    }
    Ok(Unpacked {
        files,
        bytes: written,
    })
}

fn join(dest: &Path, parts: &[String]) -> PathBuf {
    let mut p = dest.to_owned();
    p.extend(parts);
    p
}

/// The plain components of an entry name, or why it is refused.
fn entry_path(name: &str) -> Result<Vec<String>, String> {
    if name.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    if name.contains('\\') {
        return Err(
            "contains a backslash; zip paths use '/' (Windows PowerShell 5's Compress-Archive writes backslashes: zip with `tar -a -c -f app.zip *` or az instead)"
                .to_owned(),
        );
    }
    if name.starts_with('/') {
        return Err("is an absolute path".to_owned());
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("starts with a drive letter".to_owned());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err("has a '..' component, which would leave the app's folder".to_owned());
            }
            p => parts.push(p.to_owned()),
        }
    }
    Ok(parts)
}

/// Whether a link at `link` (plain components) to `target` stays inside the folder.
fn check_link(link: &[String], target: &str) -> Result<(), &'static str> {
    if target.is_empty() || target.contains('\0') {
        return Err("is not a valid target");
    }
    if target.starts_with('/') || target.contains('\\') {
        return Err("is absolute (only relative links inside the app's folder are allowed)");
    }
    // The link's own folder is this many levels below the root.
    let depth = link.len().saturating_sub(1);
    let mut ups = 0usize;
    let mut named = false;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if named => {
                return Err("goes back up after a name (only leading '..' are allowed)");
            }
            ".." => {
                ups += 1;
                if ups > depth {
                    return Err("leads outside the app's folder");
                }
            }
            _ => named = true,
        }
    }
    if !named && ups == 0 {
        return Err("points at its own folder");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(entry_path("a/b.txt").expect("ok"), ["a", "b.txt"]);
        assert_eq!(entry_path("./a//b/").expect("ok"), ["a", "b"]);
        assert!(entry_path("../evil").is_err());
        assert!(entry_path("a/../../evil").is_err());
        assert!(entry_path("/etc/passwd").is_err());
        assert!(entry_path("C:/x").is_err());
        assert!(entry_path("c:x").is_err());
        assert!(entry_path("a\\..\\..\\x").is_err());
        assert!(entry_path("a\0b").is_err());
    }

    fn parts(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn link_targets() {
        let bin = parts("node_modules/.bin/x");
        assert!(check_link(&bin, "../x/cli.js").is_ok());
        assert!(check_link(&bin, "../../server.js").is_ok());
        assert!(check_link(&bin, "../../../x").is_err());
        assert!(check_link(&bin, "/etc").is_err());
        assert!(check_link(&bin, "../x/../../../..").is_err());
        assert!(check_link(&parts("top"), "..").is_err());
        assert!(check_link(&parts("top"), "../..").is_err());
        assert!(check_link(&parts("top"), "other/file").is_ok());
        assert!(check_link(&parts("top"), ".").is_err());
    }
}
