//! Which Redis the sessions are in, from one URL: a standalone server (`redis://`, `rediss://`),
//! a Cluster (`redis+cluster://host:port,host:port/`) or a Sentinel-managed master
//! (`redis+sentinel://host:port,host:port/<master name>[/<db>]`), each also over TLS
//! (`rediss+…`). Connections are made lazily and remade after a connection error, so a Redis
//! that is down at start-up or fails over only delays the next request.

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, RedisResult,
    TlsCertificates, TlsMode, Value,
};
use tokio::sync::Mutex;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What kind of Redis a session-store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    Standalone,
    Cluster,
    Sentinel,
}

/// A parsed `redis+cluster://` or `redis+sentinel://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MultiNodeUrl {
    pub(crate) topology: Topology,
    pub(crate) tls: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) nodes: Vec<(String, u16)>,
    /// Sentinel: the master's name.
    pub(crate) master: Option<String>,
    pub(crate) db: i64,
}

/// The URL's topology and TLS, from its scheme; `None` for a scheme that is not Redis.
pub(crate) fn topology_of(url: &str) -> Option<(Topology, bool)> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    Some(match scheme.as_str() {
        "redis" => (Topology::Standalone, false),
        "rediss" => (Topology::Standalone, true),
        "redis+cluster" => (Topology::Cluster, false),
        "rediss+cluster" => (Topology::Cluster, true),
        "redis+sentinel" => (Topology::Sentinel, false),
        "rediss+sentinel" => (Topology::Sentinel, true),
        _ => return None,
    })
}

/// Parses a cluster or sentinel URL (several `host:port` in the authority, which `url` does not
/// accept). Errors say what is wrong, never echo the password.
pub(crate) fn parse_multi_node(url: &str) -> Result<MultiNodeUrl, String> {
    let (topology, tls) = topology_of(url).ok_or("not a Redis URL")?;
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(decode(user)).filter(|u| !u.is_empty()),
                Some(decode(pass)),
            ),
            None => (Some(decode(u)).filter(|u| !u.is_empty()), None),
        },
    };
    let default_port = if topology == Topology::Sentinel {
        26379
    } else {
        6379
    };
    let mut nodes = Vec::new();
    for node in hosts.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (host, port) = if let Some(v6) = node.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or(format!("node {node}: unclosed ["))?;
            (h, after.strip_prefix(':'))
        } else {
            match node.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (node, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("node {host}: port {p:?} is not a number"))?,
            None => default_port,
        };
        if host.is_empty() {
            return Err(format!("a node has no host: {node:?}"));
        }
        nodes.push((host.to_owned(), port));
    }
    if nodes.is_empty() {
        return Err("no host:port given".into());
    }
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let (master, db) = match topology {
        Topology::Sentinel => {
            let master = segments
                .next()
                .map(decode)
                .ok_or("the path must name the master: redis+sentinel://host:port/<master name>")?;
            (Some(master), segments.next())
        }
        _ => (None, segments.next()),
    };
    let db = match db {
        Some(d) => d
            .parse::<i64>()
            .map_err(|_| format!("database {d:?} is not a number"))?,
        None => 0,
    };
    if topology == Topology::Cluster && db != 0 {
        return Err("a Redis Cluster has only database 0".into());
    }
    Ok(MultiNodeUrl {
        topology,
        tls,
        username,
        password,
        nodes,
        master,
        db,
    })
}

/// `url` with any password replaced, for logs and errors (works for every Redis URL form).
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}@{hosts}{path}")
        }
        None => url.to_owned(),
    }
}

/// The connections of one Redis topology.
pub(crate) enum RedisBackend {
    Standalone(ConnectionManager),
    Cluster {
        client: ClusterClient,
        connection: Mutex<Option<ClusterConnection>>,
    },
    Sentinel {
        client: Mutex<SentinelClient>,
        connection: Mutex<Option<MultiplexedConnection>>,
        response_timeout: Duration,
    },
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedisBackend::Standalone(_) => "Standalone",
            RedisBackend::Cluster { .. } => "Cluster",
            RedisBackend::Sentinel { .. } => "Sentinel",
        })
    }
}

/// One connection of any topology, usable with every command API.
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

impl RedisBackend {
    /// The backend `url` names; nothing is connected yet.
    pub(crate) fn open(
        url: &str,
        ca_pem: Option<Vec<u8>>,
        response_timeout: Duration,
    ) -> RedisResult<RedisBackend> {
        let certificates = |ca: Option<Vec<u8>>| TlsCertificates {
            client_tls: None,
            root_cert: ca,
        };
        let invalid = |reason: String| {
            RedisError::from((redis::ErrorKind::InvalidClientConfig, "invalid URL", reason))
        };
        let topology = topology_of(url).map(|(t, _)| t);
        match topology {
            Some(Topology::Cluster) => {
                let u = parse_multi_node(url).map_err(invalid)?;
                let scheme = if u.tls { "rediss" } else { "redis" };
                let nodes: Vec<String> = u
                    .nodes
                    .iter()
                    .map(|(h, p)| format!("{scheme}://{}:{p}/", bracketed(h)))
                    .collect();
                let mut builder = ClusterClient::builder(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(response_timeout)
                    .retries(1);
                if let Some(user) = &u.username {
                    builder = builder.username(user);
                }
                if let Some(password) = &u.password {
                    builder = builder.password(password);
                }
                if u.tls {
                    builder = builder.tls(TlsMode::Secure).certs(certificates(ca_pem));
                }
                Ok(RedisBackend::Cluster {
                    client: builder.build()?,
                    connection: Mutex::new(None),
                })
            }
            Some(Topology::Sentinel) => {
                let u = parse_multi_node(url).map_err(invalid)?;
                let addrs = u.nodes.iter().map(|(h, p)| {
                    if u.tls {
                        ConnectionAddr::TcpTls {
                            host: h.clone(),
                            port: *p,
                            insecure: false,
                            tls_params: None,
                        }
                    } else {
                        ConnectionAddr::Tcp(h.clone(), *p)
                    }
                });
                let master = u.master.clone().unwrap_or_default();
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?
                        .set_client_to_redis_db(u.db);
                if let Some(user) = &u.username {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(password) = &u.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if u.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                        .set_client_to_redis_certificates(certificates(ca_pem.clone()))
                        .set_client_to_sentinel_certificates(certificates(ca_pem));
                }
                Ok(RedisBackend::Sentinel {
                    client: Mutex::new(builder.build()?),
                    connection: Mutex::new(None),
                    response_timeout,
                })
            }
            _ => {
                let client = match ca_pem {
                    Some(ca) => redis::Client::build_with_tls(url, certificates(Some(ca)))?,
                    None => redis::Client::open(url)?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                Ok(RedisBackend::Standalone(
                    ConnectionManager::new_lazy_with_config(client, config)?,
                ))
            }
        }
    }

    /// A connection, made now if there is none.
    pub(crate) async fn connection(&self) -> RedisResult<Conn> {
        match self {
            RedisBackend::Standalone(c) => Ok(Conn::Standalone(c.clone())),
            RedisBackend::Cluster { client, connection } => {
                let mut slot = connection.lock().await;
                if let Some(c) = slot.as_ref() {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let c = client.get_async_connection().await?;
                *slot = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
            RedisBackend::Sentinel {
                client,
                connection,
                response_timeout,
            } => {
                let mut slot = connection.lock().await;
                if let Some(c) = slot.as_ref() {
                    return Ok(Conn::Sentinel(c.clone()));
                }
                // Asks the sentinels for the current master every time a connection is made,
                // so a failover is followed at the next connection.
                let master = client.lock().await.async_get_client().await?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(*response_timeout));
                let c = master
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                *slot = Some(c.clone());
                Ok(Conn::Sentinel(c))
            }
        }
    }

    /// Forgets the connection (it did not answer in time); the next operation makes a new one.
    pub(crate) async fn forget(&self) {
        match self {
            RedisBackend::Standalone(_) => {}
            RedisBackend::Cluster { connection, .. } => *connection.lock().await = None,
            RedisBackend::Sentinel { connection, .. } => *connection.lock().await = None,
        }
    }

    /// After `error`: forget a connection that may be dead or point at a demoted master (the
    /// standalone manager reconnects by itself).
    pub(crate) async fn failed(&self, error: &RedisError) {
        let stale = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.code() == Some("READONLY");
        if stale {
            self.forget().await;
        }
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_and_sentinel_urls_parse_with_defaults_and_precise_errors() {
        let u = parse_multi_node("redis+cluster://:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/")
            .unwrap();
        assert_eq!(u.topology, Topology::Cluster);
        assert!(!u.tls);
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert_eq!(
            u.nodes,
            vec![
                ("10.0.0.1".to_owned(), 7000),
                ("10.0.0.2".to_owned(), 6379),
                ("::1".to_owned(), 7002)
            ]
        );
        let s = parse_multi_node("rediss+sentinel://app:pw@s1,s2:26380/mymaster/2").unwrap();
        assert_eq!(s.topology, Topology::Sentinel);
        assert!(s.tls);
        assert_eq!(s.username.as_deref(), Some("app"));
        assert_eq!(s.nodes[0], ("s1".to_owned(), 26379));
        assert_eq!(s.master.as_deref(), Some("mymaster"));
        assert_eq!(s.db, 2);

        for (bad, says) in [
            ("redis+sentinel://s1:26379", "must name the master"),
            ("redis+cluster://", "no host"),
            ("redis+cluster://h:port/", "not a number"),
            ("redis+cluster://h:7000/3", "only database 0"),
            ("redis+cluster://:hunter2@h:x/", "not a number"),
        ] {
            let e = parse_multi_node(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn passwords_are_redacted_in_every_form() {
        for (url, shown) in [
            ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
            ("rediss://user:pw@h/", "rediss://user:***@h/"),
            (
                "redis+cluster://:pw@a:1,b:2/",
                "redis+cluster://:***@a:1,b:2/",
            ),
            (
                "redis+sentinel://u:p%40w@s:1/m",
                "redis+sentinel://u:***@s:1/m",
            ),
            ("redis://tokenonly@h", "redis://***@h"),
            ("redis://h:6379", "redis://h:6379"),
        ] {
            assert_eq!(redacted_url(url), shown);
        }
    }
}
