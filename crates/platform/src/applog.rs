//! An app's log as the log stream shows it (Kudu's `/api/logstream`, `az webapp log tail`, the
//! portal's Log stream): its processes' output across restarts and deployments, and the
//! platform's explanations of the requests its module refused. Bounded: the last
//! [`KEPT_LINES`] lines, and followers that fall behind skip lines rather than hold memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

const KEPT_LINES: usize = 400;
const FOLLOWER_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct AppLog {
    lines: Arc<Mutex<VecDeque<String>>>,
    live: broadcast::Sender<String>,
}

impl std::fmt::Debug for AppLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLog").finish_non_exhaustive()
    }
}

impl Default for AppLog {
    fn default() -> Self {
        AppLog {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES))),
            live: broadcast::channel(FOLLOWER_BUFFER).0,
        }
    }
}

impl AppLog {
    /// Adds a line, stamped with the time (UTC, as App Service's log stream shows it).
    pub fn push(&self, line: &str) {
        let stamped = format!("{}  {line}", now_utc());
        {
            let mut lines = self
                .lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if lines.len() == KEPT_LINES {
                lines.pop_front();
            }
            lines.push_back(stamped.clone());
        }
        // No follower is not an error.
        let _ = self.live.send(stamped);
    }

    /// The kept lines and a receiver of the next ones.
    pub fn feed(&self) -> easyauth_kudu::LogFeed {
        let live = self.live.subscribe();
        let recent = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        easyauth_kudu::LogFeed {
            recent,
            live: Some(live),
        }
    }
}

/// `2026-12-03T13:55:01Z`.
fn now_utc() -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines_and_feeds_followers() {
        let log = AppLog::default();
        for i in 0..(KEPT_LINES + 5) {
            log.push(&format!("line {i}"));
        }
        let mut feed = log.feed();
        assert_eq!(feed.recent.len(), KEPT_LINES);
        assert!(feed.recent[0].ends_with("  line 5"), "{}", feed.recent[0]);
        assert!(feed.recent[0].starts_with("20") && feed.recent[0].as_bytes()[10] == b'T');
        log.push("next");
        let next = feed
            .live
            .as_mut()
            .expect("live")
            .recv()
            .await
            .expect("line");
        assert!(next.ends_with("  next"), "{next}");
    }
}
