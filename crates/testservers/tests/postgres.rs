//! The private PostgreSQL: it starts (as the `postgres` user when run as root), listens on its
//! own port, and keeps its data across a stop and a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use easyauth_testservers::PostgresServer;

#[test]
fn postgres_keeps_its_data_across_restart() {
    let mut server = PostgresServer::start().unwrap();
    let port = server.port();
    assert!(server.url().starts_with("postgres://postgres@127.0.0.1:"));
    let url = server.create_database("kept").unwrap();
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/kept"));

    server.stop();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a stopped server must not accept connections"
    );
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    // The database created before the restart is still there.
    let again = server.create_database("kept").unwrap_err();
    assert!(again.0.contains("already exists"), "{again}");
    assert!(server.create_database("bad name;").is_err());
}
