//! Unsafe or oversized uploads are refused before anything is written outside a staging folder,
//! and the staging folder is gone afterwards. No network.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Site, node_server, node_settings, zip, zip_with};
use easyauth_kudu::{DeployError, DeploymentState, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

fn small_limits() -> Limits {
    Limits {
        max_zip_bytes: 64 * 1024,
        max_unpacked_bytes: 1024 * 1024,
        max_entries: 10,
        ..Limits::default()
    }
}

/// What a site folder holds when nothing was deployed.
const UNTOUCHED: [&str; 4] = ["a", "a/b", "a/b/site", "a/b/site/deployments"];

async fn refused(site: &Site, body: Vec<u8>) -> DeployError {
    let err = tokio::time::timeout(Duration::from_secs(30), site.kudu.deploy_zip(body))
        .await
        .expect("bounded")
        .expect_err("refused");
    assert_eq!(
        site.tree(),
        UNTOUCHED,
        "nothing may be left behind after {err}"
    );
    assert!(site.kudu.deployments().is_empty());
    assert!(!site.kudu.is_deploying(), "the lock is released");
    err
}

fn bad_zip(err: &DeployError) -> &str {
    match err {
        DeployError::BadZip(m) => m,
        other => panic!("expected BadZip, got {other:?}"),
    }
}

#[tokio::test]
async fn entry_names_that_leave_the_folder_are_refused() {
    let site = Site::new(node_settings(false), small_limits()).await;
    for (name, why) in [
        ("../evil", "'..'"),
        ("ok/../../evil", "'..'"),
        ("/abs", "absolute"),
        ("C:/evil", "drive letter"),
        ("..\\..\\evil", "backslash"),
    ] {
        let err = refused(&site, zip(&[("server.js", "x"), (name, "evil")])).await;
        let message = bad_zip(&err);
        assert!(
            message.contains(name) && message.contains(why),
            "{name}: {message}"
        );
        assert_eq!(err.status(), 400);
    }
}

#[tokio::test]
async fn symlinks_out_of_the_folder_are_refused() {
    let site = Site::new(node_settings(false), small_limits()).await;
    for target in ["/etc", "../..", "..", "sub/../../x"] {
        let body = zip_with(|w| {
            w.start_file("server.js", SimpleFileOptions::default())
                .expect("start");
            w.add_symlink("link", target, SimpleFileOptions::default())
                .expect("link");
        });
        let err = refused(&site, body).await;
        let message = bad_zip(&err);
        assert!(
            message.contains("'link'") && message.contains("symlink"),
            "{target}: {message}"
        );
    }
    // Nothing may be written through a link either.
    let body = zip_with(|w| {
        w.add_symlink("sub", "dir", SimpleFileOptions::default())
            .expect("link");
        w.start_file("sub/x", SimpleFileOptions::default())
            .expect("start");
    });
    let err = refused(&site, body).await;
    assert!(bad_zip(&err).contains("inside a symlink"), "{err}");
}

#[tokio::test]
async fn relative_symlinks_inside_the_folder_are_kept() {
    let site = Site::new(node_settings(false), Limits::default()).await;
    let body = zip_with(|w| {
        w.start_file("lib/server.js", SimpleFileOptions::default())
            .expect("start");
        w.write_all(node_server("linked").as_bytes())
            .expect("write");
        w.add_symlink("server.js", "lib/server.js", SimpleFileOptions::default())
            .expect("link");
        w.add_symlink("bin/run", "../lib/server.js", SimpleFileOptions::default())
            .expect("link");
    });
    let d = tokio::time::timeout(Duration::from_secs(60), site.kudu.deploy_zip(body))
        .await
        .expect("bounded")
        .expect("accepted");
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
    let site_dir = site.root.join("deployments").join(&d.id).join("site");
    assert_eq!(
        std::fs::read_link(site_dir.join("bin/run")).expect("link"),
        std::path::Path::new("../lib/server.js")
    );
    let (_, port) = site.host.running().expect("running");
    assert_eq!(common::get_text(port, "/").await.expect("get"), "linked");
}

#[tokio::test]
async fn zip_bombs_are_stopped_while_unpacking() {
    let site = Site::new(node_settings(false), small_limits()).await;
    // 8 MiB of zeros deflate to a few KiB.
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = zip_with(|w| {
        w.start_file(
            "zeros.bin",
            SimpleFileOptions::default().compression_method(CompressionMethod::Deflated),
        )
        .expect("start");
        w.write_all(&zeros).expect("write");
    });
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {}", bomb.len());
    let err = refused(&site, bomb.clone()).await;
    assert!(
        bad_zip(&err).contains("zeros.bin") && bad_zip(&err).contains("more than"),
        "{err}"
    );

    // The same bomb whose headers claim 100 bytes: caught by counting, not by the headers.
    let lying = patch_uncompressed_sizes(bomb, 100);
    let err = refused(&site, lying).await;
    assert!(bad_zip(&err).contains("zeros.bin"), "{err}");
}

/// Rewrites every local and central header's uncompressed size to `size`.
fn patch_uncompressed_sizes(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    let mut patched = 0;
    let mut i = 0;
    while i + 4 <= zip.len() {
        let offset = match &zip[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => Some(22),
            [0x50, 0x4b, 0x01, 0x02] => Some(24),
            _ => None,
        };
        if let Some(offset) = offset
            && i + offset + 4 <= zip.len()
        {
            zip[i + offset..i + offset + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
        i += 1;
    }
    assert_eq!(patched, 2, "one local and one central header");
    zip
}

#[tokio::test]
async fn too_many_entries_not_a_zip_and_a_wrong_checksum_are_refused() {
    let site = Site::new(node_settings(false), small_limits()).await;
    let names: Vec<String> = (0..11).map(|i| format!("f{i}.txt")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    let err = refused(&site, zip(&files)).await;
    assert!(bad_zip(&err).contains("11 entries"), "{err}");

    let err = refused(&site, b"this is not a zip".to_vec()).await;
    assert!(bad_zip(&err).contains("not a zip"), "{err}");
    let err = refused(&site, Vec::new()).await;
    assert!(bad_zip(&err).contains("not a zip"), "{err}");

    let body = zip(&[("server.js", "x")]);
    let err = site
        .kudu
        .start_deploy(body.into(), Some("00".repeat(32)), None)
        .await
        .expect_err("checksum");
    assert!(matches!(err, DeployError::ChecksumMismatch { .. }), "{err}");
    assert_eq!(err.status(), 400);
    assert_eq!(site.tree(), UNTOUCHED);

    let err = refused(&site, vec![0u8; 65 * 1024]).await;
    assert!(matches!(err, DeployError::TooLarge { .. }), "{err}");
    assert_eq!(err.status(), 413);
}

/// A chunked body without Content-Length is cut off with 413 as soon as it passes the limit.
#[tokio::test]
async fn an_oversized_streamed_body_gets_413_before_it_ends() {
    let site = Site::new(node_settings(false), small_limits()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = easyauth_kudu::router(site.kudu.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = base64_basic(common::USER, common::PASSWORD);
    let head = format!(
        "POST /api/zipdeploy?isAsync=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let (mut reader, mut writer) = stream.into_split();
    // Up to 16 MiB, far past the 64 KiB limit; the server answers long before.
    let sender = tokio::spawn(async move {
        let chunk = vec![b'x'; 16 * 1024];
        let mut sent = 0usize;
        for _ in 0..1024 {
            let frame = format!("{:x}\r\n", chunk.len());
            if writer.write_all(frame.as_bytes()).await.is_err()
                || writer.write_all(&chunk).await.is_err()
                || writer.write_all(b"\r\n").await.is_err()
            {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if response.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an answer within the timeout");
    let text = String::from_utf8_lossy(&response).into_owned();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    drop(reader);
    let sent = tokio::time::timeout(Duration::from_secs(20), sender)
        .await
        .expect("sender ends")
        .expect("sender");
    assert!(
        sent < 16 * 1024 * 1024,
        "the server stopped reading: sent {sent}"
    );
    assert_eq!(site.tree(), UNTOUCHED);
    server.abort();
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A client that goes away mid-upload leaves nothing behind, and the next deploy is not blocked.
#[tokio::test]
async fn an_upload_cut_off_leaves_nothing() {
    let site = Site::new(node_settings(false), Limits::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = easyauth_kudu::router(site.kudu.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = base64_basic(common::USER, common::PASSWORD);
    let head = format!(
        "POST /api/zipdeploy?isAsync=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[b'P'; 10_000]).await.expect("part");
    // The upload is being received: a staging folder exists.
    let staged = async {
        while !site.tree().iter().any(|p| p.contains(".staging-")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), staged)
        .await
        .expect("staging folder appears");
    drop(stream);
    let cleaned = async {
        while site.tree() != UNTOUCHED {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), cleaned)
        .await
        .expect("staging folder removed");
    let d = tokio::time::timeout(
        Duration::from_secs(60),
        site.kudu
            .deploy_zip(zip(&[("server.js", &node_server("after"))])),
    )
    .await
    .expect("bounded")
    .expect("not blocked");
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
    server.abort();
}
