//! A PostgreSQL database of a test's own (shared by the store's conformance suite and the
//! end-to-end tests, which include this file).
//!
//! The server is `STEPWISE_TEST_POSTGRES` (default
//! `postgres://stepwise:stepwise@127.0.0.1:5432/postgres`); a role there must be allowed to
//! create databases. When nothing answers, [`TestDb::create`] fails the test with a message
//! saying how to start PostgreSQL, unless `STEPWISE_SKIP_POSTGRES=1`, when it returns `None`
//! and the test is skipped.

#![allow(dead_code)]

use sqlx::Connection;

/// The default server of the tests.
pub const DEFAULT_URL: &str = "postgres://stepwise:stepwise@127.0.0.1:5432/postgres";

/// The server URL the tests use.
pub fn server_url() -> String {
    std::env::var("STEPWISE_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A database created for one test, dropped when it is dropped.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
    server: String,
}

impl TestDb {
    /// Creates a new empty database named after `prefix`; `None` when PostgreSQL is not
    /// reachable and `STEPWISE_SKIP_POSTGRES=1`.
    pub async fn create(prefix: &str) -> Option<TestDb> {
        let server = server_url();
        let mut conn = match sqlx::PgConnection::connect(&server).await {
            Ok(conn) => conn,
            Err(error) => {
                if std::env::var("STEPWISE_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("SKIPPED: PostgreSQL at {server} is not reachable (STEPWISE_SKIP_POSTGRES=1): {error}");
                    return None;
                }
                panic!(
                    "PostgreSQL is not reachable at {server} ({error}): install and start Debian's `postgresql` \
                     package (.ci/run does; see the README), point STEPWISE_TEST_POSTGRES at a server whose role \
                     may create databases, or set STEPWISE_SKIP_POSTGRES=1 to skip these tests"
                );
            }
        };
        let name = format!("stepwise_{prefix}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("CREATE DATABASE");
        let _ = conn.close().await;
        let url = match server.rfind('/') {
            Some(i) if server[..i].ends_with(|c: char| c != '/') => format!("{}/{name}", &server[..i]),
            _ => format!("{server}/{name}"),
        };
        Some(TestDb { url, name, server })
    }

    /// Creates the database from synchronous code.
    pub fn create_blocking(prefix: &str) -> Option<TestDb> {
        let prefix = prefix.to_owned();
        std::thread::spawn(move || runtime().block_on(TestDb::create(&prefix))).join().expect("create a test database")
    }

    /// Runs one SQL statement on the database and returns the first column of each row as text.
    pub fn query_blocking(&self, sql: &str) -> Vec<String> {
        let url = self.url.clone();
        let sql = sql.to_owned();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                use sqlx::Row;
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect to the test database");
                let rows = sqlx::query(&sql).fetch_all(&mut conn).await.expect("query the test database");
                rows.iter()
                    .map(|row| {
                        row.try_get::<Option<String>, _>(0)
                            .map(|v| v.unwrap_or_default())
                            .or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string()))
                            .or_else(|_| row.try_get::<bool, _>(0).map(|v| v.to_string()))
                            .expect("a text, bigint or boolean column")
                    })
                    .collect()
            })
        })
        .join()
        .expect("query thread")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Best effort, on a thread of its own: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            runtime().block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}
