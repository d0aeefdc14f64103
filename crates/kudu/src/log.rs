//! A deployment's log: `log.txt` in its folder, one line per event, each with its time:
//!
//! ```text
//! 2024-05-01T10:00:00.1230000Z INFO  Running npm install
//! 2024-05-01T10:00:01.4560000Z   |   added 64 packages in 1s
//! 2024-05-01T10:00:02.0000000Z ERROR npm install exited with status 1
//! ```
//!
//! Steps (`INFO`/`WARN`/`ERROR`) become Kudu's log entries; the command output under a step
//! (`  |  `) becomes that entry's details.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::deployment::format_time;

/// The width of [`format_time`]'s output.
const TIME_WIDTH: usize = 28;
const OUTPUT_TAG: &str = "  |  ";

/// One entry of Kudu's `/api/deployments/{id}/log` (and of its details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub log_time: String,
    pub id: String,
    pub message: String,
    /// 0 message, 1 warning, 2 error.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Where the entry's command output is (`/api/deployments/{id}/log/{entry}`), if any.
    pub details_url: Option<String>,
}

/// A step of the log with the output lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) entry: LogEntry,
    pub(crate) details: Vec<LogEntry>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Info => "INFO ",
            Level::Warn => "WARN ",
            Level::Error => "ERROR",
        }
    }
}

/// Appends to a deployment's `log.txt`. A write error is reported once (tracing) and the
/// deployment goes on: a full disk must not leave a deployment hanging.
#[derive(Debug)]
pub(crate) struct DeployLog {
    path: PathBuf,
    site: String,
    file: Mutex<Option<tokio::fs::File>>,
}

impl DeployLog {
    pub(crate) async fn create(path: &Path, site: &str) -> std::io::Result<DeployLog> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(DeployLog {
            path: path.to_owned(),
            site: site.to_owned(),
            file: Mutex::new(Some(file)),
        })
    }

    pub(crate) async fn info(&self, text: &str) {
        tracing::info!(site = %self.site, "{text}");
        self.step(Level::Info, text).await;
    }

    pub(crate) async fn warn(&self, text: &str) {
        tracing::warn!(site = %self.site, "{text}");
        self.step(Level::Warn, text).await;
    }

    pub(crate) async fn error(&self, text: &str) {
        tracing::warn!(site = %self.site, "{text}");
        self.step(Level::Error, text).await;
    }

    /// A step; further lines of a multi-line text go under it as output.
    async fn step(&self, level: Level, text: &str) {
        let now = format_time(OffsetDateTime::now_utc());
        let mut lines = text.lines();
        let mut buf = format!("{now} {} {}\n", level.tag(), lines.next().unwrap_or(""));
        for more in lines {
            buf.push_str(&format!("{now} {OUTPUT_TAG} {more}\n"));
        }
        self.write(&buf).await;
    }

    /// One line of a command's output.
    pub(crate) async fn output(&self, line: &str) {
        tracing::debug!(site = %self.site, "{line}");
        let now = format_time(OffsetDateTime::now_utc());
        self.write(&format!("{now} {OUTPUT_TAG} {line}\n")).await;
    }

    async fn write(&self, text: &str) {
        let mut file = self.file.lock().await;
        if let Some(f) = file.as_mut() {
            let result = match f.write_all(text.as_bytes()).await {
                Ok(()) => f.flush().await,
                Err(e) => Err(e),
            };
            if let Err(err) = result {
                tracing::warn!(site = %self.site, path = %self.path.display(), %err, "cannot write the deployment log; going on without it");
                *file = None;
            }
        }
    }
}

/// Kudu's entries from a `log.txt`. Lines not in the format (hand edits) count as output.
pub(crate) fn parse(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in text.lines() {
        let (time, rest) = if line.len() > TIME_WIDTH + 1 && line.is_char_boundary(TIME_WIDTH) {
            (&line[..TIME_WIDTH], &line[TIME_WIDTH + 1..])
        } else {
            ("", line)
        };
        let level = if time.is_empty() {
            None
        } else {
            [("INFO  ", 0u8), ("WARN  ", 1), ("ERROR ", 2)]
                .into_iter()
                .find_map(|(tag, kind)| rest.strip_prefix(tag).map(|m| (kind, m)))
        };
        match level {
            Some((kind, message)) => {
                let id = (steps.len() + 1).to_string();
                steps.push(Step {
                    entry: LogEntry {
                        log_time: time.to_owned(),
                        id,
                        message: message.to_owned(),
                        kind,
                        details_url: None,
                    },
                    details: Vec::new(),
                });
            }
            None => {
                let message = rest
                    .strip_prefix(OUTPUT_TAG)
                    .map(|m| m.strip_prefix(' ').unwrap_or(m))
                    .unwrap_or(rest);
                if steps.is_empty() {
                    steps.push(Step {
                        entry: LogEntry {
                            log_time: time.to_owned(),
                            id: "1".to_owned(),
                            message: String::new(),
                            kind: 0,
                            details_url: None,
                        },
                        details: Vec::new(),
                    });
                }
                if let Some(step) = steps.last_mut() {
                    let id = format!("{}-{}", step.entry.id, step.details.len() + 1);
                    step.details.push(LogEntry {
                        log_time: time.to_owned(),
                        id,
                        message: message.to_owned(),
                        kind: 0,
                        details_url: None,
                    });
                }
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_and_parses_back() {
        let dir = std::env::temp_dir().join(format!("kudu-log-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log.txt");
        let log = DeployLog::create(&path, "web").await.expect("create");
        log.info("Running npm install").await;
        log.output("added 1 package").await;
        log.output("").await;
        log.warn("careful").await;
        log.error("npm install failed\nline a\nline b").await;
        let text = std::fs::read_to_string(&path).expect("read");
        let steps = parse(&text);
        assert_eq!(steps.len(), 3, "{text}");
        assert_eq!(steps[0].entry.message, "Running npm install");
        assert_eq!(steps[0].entry.kind, 0);
        assert_eq!(steps[0].details.len(), 2);
        assert_eq!(steps[0].details[0].message, "added 1 package");
        assert_eq!(steps[0].details[1].message, "");
        assert_eq!(steps[1].entry.kind, 1);
        assert_eq!(steps[2].entry.kind, 2);
        assert_eq!(steps[2].details[1].message, "line b");
        assert_eq!(steps[2].entry.log_time.len(), TIME_WIDTH);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
