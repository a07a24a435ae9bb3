//! Several `presence serve` nodes on one PostgreSQL database, and a database outage. These run
//! only with PostgreSQL (`PRESENCE_TEST_POSTGRES_URL`); SQLite is one node by design.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use presence::store::testing;

use crate::helpers::*;

fn get(associate_id: i32) -> Request {
    Request::post(GET)
        .basic(ADMIN)
        .json(&format!(r#"{{"AssociateId":{associate_id}}}"#))
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "built without PRESENCE_TEST_POSTGRES_URL"
)]
async fn two_nodes_share_one_database() {
    let server = testing::postgres_admin_url();
    let database_url = testing::fresh_postgres_database(&server).await.unwrap();
    // Started together, both migrate: the advisory lock has them take turns.
    let one = ServerProcess::start(&database_url, &[]);
    let two = ServerProcess::start(&database_url, &[]);

    // Read-your-writes across nodes: a Set answered by one is what the other reads.
    for round in 0..10 {
        let status = if round % 2 == 0 {
            "StatusNotAvailable"
        } else {
            "StatusNormal"
        };
        let body = format!(
            r#"{{"AssociateId":963,"UserPresenceStatus":{{"Status":"{status}","Message":"round {round}"}}}}"#
        );
        let (writer, reader) = if round % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let set = writer
            .send(Request::post(SET).basic(ADMIN).json(&body))
            .await;
        assert_eq!(set.status, 200);
        assert_eq!(reader.send(get(963)).await.text(), set.text());
    }

    // A password changed anywhere stops working everywhere at once, cached sign-ins included.
    let (store, _) = presence::store::Store::open_and_migrate(&database_url)
        .await
        .unwrap();
    add_user(&store, 50, "carl", "old-secret", false).await;
    let carl = |password: &str| {
        Request::post(GET)
            .basic(("carl", password))
            .json(r#"{"AssociateId":50}"#)
    };
    assert_eq!(one.send(carl("old-secret")).await.status, 200);
    assert_eq!(two.send(carl("old-secret")).await.status, 200);
    let output = Command::new(presence_binary())
        .args([
            "--database",
            &database_url,
            "user",
            "passwd",
            "carl",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"new-secret\n")?;
            child.wait()
        })
        .unwrap();
    assert!(output.success());
    assert_eq!(one.send(carl("old-secret")).await.status, 401);
    assert_eq!(two.send(carl("old-secret")).await.status, 401);
    assert_eq!(one.send(carl("new-secret")).await.status, 200);
    assert_eq!(two.send(carl("new-secret")).await.status, 200);

    // A ticket revoked through one node's database is refused by both.
    let ticket = String::from_utf8(
        Command::new(presence_binary())
            .args(["--database", &database_url, "ticket", "issue", "carl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let with_ticket = || {
        Request::post(GET)
            .header("Authorization", &format!("SOTicket {ticket}"))
            .json(r#"{"AssociateId":50}"#)
    };
    assert_eq!(one.send(with_ticket()).await.status, 200);
    assert_eq!(two.send(with_ticket()).await.status, 200);
    let revoked = Command::new(presence_binary())
        .args(["--database", &database_url, "ticket", "revoke", "carl"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    assert_eq!(one.send(with_ticket()).await.status, 401);
    assert_eq!(two.send(with_ticket()).await.status, 401);

    // Password guessing is counted across nodes: five failures spread over both lock carl.
    for n in 0..5 {
        let node = if n % 2 == 0 { &one } else { &two };
        assert_eq!(node.send(carl("guess")).await.status, 401);
    }
    let fresh_cache = ServerProcess::start(&database_url, &[]);
    assert_eq!(
        fresh_cache.send(carl("new-secret")).await.status,
        401,
        "locked on a third node"
    );
}

/// A PostgreSQL cluster of the test's own, which it may stop and start.
struct OwnCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnCluster {
    fn create() -> Option<Self> {
        let bin = server_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("presence-outage")
            .tempdir_in("/tmp")
            .ok()?;
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let data = dir.path().join("data");
        let initdb = as_owner(
            &bin.join("initdb"),
            &["-A", "trust", "-U", "postgres", "-D", data.to_str()?],
        );
        assert!(initdb.success(), "initdb failed");
        let cluster = Self { bin, dir, port };
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        let status = as_owner(
            &self.bin.join("pg_ctl"),
            &[
                "start",
                "-w",
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
            ],
        );
        assert!(status.success(), "pg_ctl start failed");
    }

    fn stop(&self) {
        let status = as_owner(
            &self.bin.join("pg_ctl"),
            &[
                "stop",
                "-w",
                "-m",
                "immediate",
                "-D",
                self.data().to_str().unwrap(),
            ],
        );
        assert!(status.success(), "pg_ctl stop failed");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = as_owner(
            &self.bin.join("pg_ctl"),
            &[
                "stop",
                "-m",
                "immediate",
                "-D",
                self.data().to_str().unwrap_or_default(),
            ],
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn as_owner(program: &Path, args: &[&str]) -> std::process::ExitStatus {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.status().expect("the PostgreSQL programs run")
}

/// Where initdb and pg_ctl are: on PATH, or where Debian puts them.
fn server_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"));
    on_path
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "built without PRESENCE_TEST_POSTGRES_URL"
)]
async fn an_outage_answers_503_in_bounded_time_and_recovers_by_itself() {
    let cluster = OwnCluster::create().expect("the PostgreSQL server programs");
    let node = ServerProcess::start(&cluster.url(), &["--db-acquire-timeout-ms", "1000"]);
    assert_eq!(node.send(get(963)).await.status, 200);
    assert_eq!(
        node.send(Request::new("GET", "/health/ready")).await.status,
        200
    );

    cluster.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let response = node.send(get(963)).await;
        assert_eq!(response.status, 503, "{}", response.text());
        assert_eq!(response.json()["ErrorType"], "ServiceUnavailableException");
        // The bound: the acquire timeout plus slack for a loaded machine; a hang fails it.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        node.send(Request::new("GET", "/health/ready")).await.status,
        503
    );
    assert_eq!(
        node.send(Request::new("GET", "/health/live")).await.status,
        200
    );

    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.send(get(963)).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        node.send(Request::new("GET", "/health/ready")).await.status,
        200
    );
}
