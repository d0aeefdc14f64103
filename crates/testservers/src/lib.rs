//! Real servers for tests: each is started from its Debian package's binary on a free loopback
//! port, with its data in a temporary folder, and killed when the handle is dropped. The
//! machine's own instances (if any) are never touched.
//!
//! `cargo xtask test` installs the packages; run alone, a test that needs a missing server fails
//! with a message naming the package.

mod postgres;
mod process;
mod redis;

pub use postgres::PostgresServer;
pub use process::{ServerError, free_port};
pub use redis::{RedisCluster, RedisSentinel, RedisServer, RedisTls, SENTINEL_MASTER};
