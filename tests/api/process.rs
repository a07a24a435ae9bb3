//! The real `presence` binary as operators run it: durability across SIGKILL, a clean stop
//! on SIGTERM, the command line used beside a busy server, and what a flood of guesses does
//! to its memory and its log.

use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

both_backends!(
    acknowledged_sets_survive_sigkill,
    sigterm_finishes_and_exits_zero,
    shutdown_lets_a_request_in_flight_finish,
    the_command_line_beside_a_busy_server_leaves_it_serving,
    waves_of_guesses_leave_memory_flat,
    a_locked_login_hammered_is_logged_once_then_counted,
    sigterm_with_a_half_sent_request_exits_at_the_shutdown_timeout,
    the_open_file_limit_is_raised_and_the_connection_limit_fitted_under_it,
);

fn start_server(database_url: &str) -> ServerProcess {
    ServerProcess::start(database_url, &[])
}

fn set_request(associate_id: i32, round: usize) -> Request {
    let status = if round.is_multiple_of(2) {
        "StatusNotAvailable"
    } else {
        "StatusNormal"
    };
    Request::post(SET).basic(ADMIN).json(&format!(
        r#"{{"AssociateId":{associate_id},"UserPresenceStatus":{{"Status":"{status}","Message":"round {round}"}}}}"#
    ))
}

async fn acknowledged_sets_survive_sigkill() {
    let database = fresh_database().await;
    let database_url = database.url.clone();
    let associates: Vec<i32> = (100..110).collect();
    {
        let (store, _) = presence::store::Store::open_and_migrate(&database_url)
            .await
            .unwrap();
        for &id in &associates {
            add_user(&store, id, &format!("agent{id}"), "x", false).await;
        }
    }
    let mut server = start_server(&database_url);
    // One writer per associate, each sending its Sets one after another so that the last
    // acknowledged one is well defined; the writers run concurrently.
    let address = server.address;
    let writers = associates.iter().map(|&id| {
        tokio::spawn(async move {
            let mut last = None;
            for round in 0..20 {
                let response = send_to(address, set_request(id, round)).await;
                assert_eq!(response.status, 200);
                last = Some(response.text().to_owned());
            }
            (id, last.unwrap())
        })
    });
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.push(writer.await.unwrap());
    }
    // SIGKILL, the instant after the last acknowledgement: no chance to flush anything.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut restarted = start_server(&database_url);
    for (id, last) in acknowledged {
        let response = send_to(
            restarted.address,
            Request::post(GET)
                .basic(ADMIN)
                .json(&format!(r#"{{"AssociateId":{id}}}"#)),
        )
        .await;
        assert_eq!(response.text(), last, "associate {id}");
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

async fn sigterm_finishes_and_exits_zero() {
    let database = fresh_database().await;
    let database_url = database.url.clone();
    let mut server = start_server(&database_url);
    let response = send_to(
        server.address,
        Request::post(GET)
            .basic(ADMIN)
            .json(r#"{"AssociateId":963}"#),
    )
    .await;
    assert_eq!(response.status, 200);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn shutdown_lets_a_request_in_flight_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let body = r#"{"AssociateId":963}"#;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Half the request is on the wire when the shutdown begins...
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "the server stopped with a request in flight"
    );
    // ...and the rest after: the request is still answered, then the server stops.
    stream.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"Status":"StatusDeleted","Message":"ut"}"#));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
}

async fn the_command_line_beside_a_busy_server_leaves_it_serving() {
    let database = fresh_database().await;
    let database_url = database.url.clone();
    {
        let (store, _) = presence::store::Store::open_and_migrate(&database_url)
            .await
            .unwrap();
        for id in 100..109 {
            add_user(&store, id, &format!("agent{id}"), "x", false).await;
        }
    }
    let mut server = start_server(&database_url);
    // Sets without pause from eight clients, while the command line opens the same database
    // again and again: on SQLite, each time it decides whether it is the only process using
    // the shared memory of the write-ahead log.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let address = server.address;
    let writers: Vec<_> = (100..108)
        .map(|id| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = send_to(address, set_request(id, round)).await;
                    assert_eq!(response.status, 200, "associate {id}, round {round}");
                    round += 1;
                }
                round
            })
        })
        .collect();
    for round in 0..30 {
        let status = if round % 2 == 0 {
            "StatusNotAvailable"
        } else {
            "StatusNormal"
        };
        let url = database_url.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(presence_binary())
                .args(["--database", &url, "status", "set", "108", status])
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(output.status.success(), "{output:?}");
        let answer = server
            .send(
                Request::post(GET)
                    .basic(ADMIN)
                    .json(r#"{"AssociateId":108}"#),
            )
            .await;
        assert_eq!(answer.json()["Status"], status, "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        assert!(
            writer.await.unwrap() > 0,
            "every client's Sets went through"
        );
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server still runs"
    );
}

/// Forty guesses at once with unknown logins, wave after wave: the password threads keep the
/// memory one check needs each, so the server's peak does not grow with the waves.
async fn waves_of_guesses_leave_memory_flat() {
    let database = fresh_database().await;
    let server = start_server(&database.url);
    let wave = |wave: usize| {
        let address = server.address;
        let guesses: Vec<_> = (0..40)
            .map(move |i| {
                tokio::spawn(async move {
                    let login = format!("nobody-{wave}-{i}");
                    let guess = Request::post(GET)
                        .basic((&login, "guess"))
                        .json(r#"{"AssociateId":963}"#);
                    send_to(address, guess).await.status
                })
            })
            .collect::<Vec<_>>();
        async move {
            for guess in guesses {
                // 503 for a guess that waited its turn too long on a slow machine.
                assert!(matches!(guess.await.unwrap(), 401 | 503));
            }
        }
    };
    wave(0).await;
    let after_one = server.peak_memory_kib();
    for number in 1..4 {
        wave(number).await;
    }
    let after_four = server.peak_memory_kib();
    // Flat: within a few MiB of allocator noise, where each check's own 19 MiB, kept by
    // whichever thread ran it, once grew it by hundreds.
    assert!(
        after_four < after_one + 16 * 1024,
        "peak {after_one} KiB after one wave, {after_four} KiB after four"
    );
}

/// One client hammering a locked login: the first refusal is logged, the rest only counted.
async fn a_locked_login_hammered_is_logged_once_then_counted() {
    let database = fresh_database().await;
    let server = start_server(&database.url);
    let guess = || {
        Request::post(GET)
            .basic(("tje0", "guess"))
            .json(r#"{"AssociateId":963}"#)
    };
    for _ in 0..5 {
        assert_eq!(server.send(guess()).await.status, 401);
    }
    for _ in 0..200 {
        assert_eq!(server.send(guess()).await.status, 401);
    }
    // The log is read by a thread of its own: give it a moment to catch up.
    let mut lines = 0;
    for _ in 0..50 {
        lines = server.log_lines_with("login locked out");
        if lines > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines, 1, "{:#?}", server.log.lock().unwrap());
}

/// SIGTERM while a client has sent half a request and then nothing: the server does not wait
/// for the rest past its shutdown timeout.
async fn sigterm_with_a_half_sent_request_exits_at_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt;
    let database = fresh_database().await;
    let mut server =
        ServerProcess::start_with(&database.url, &[], &["--shutdown-timeout-ms", "500"]);
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let body = r#"{"AssociateId":963}"#;
    let head = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exited = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server exits, the half-sent request notwithstanding");
    assert!(exited.success(), "{exited:?}");
}

/// Started with a soft limit on open files below its hard one, the server raises it to the hard
/// one; with a hard limit too low for its connection limit, it lowers the connection limit to
/// what the files leave room for, says so, and serves. (`prlimit`, from util-linux, runs it
/// with the limits given.)
async fn the_open_file_limit_is_raised_and_the_connection_limit_fitted_under_it() {
    let database = fresh_database().await;
    let raised = ServerProcess::start_under(
        &["prlimit", "--nofile=512:2048", "--"],
        &database.url,
        &[],
        &[],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", raised.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("the open-file limit");
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["2048", "2048"],
        "{open_files}"
    );
    drop(raised);

    let fitted = ServerProcess::start_under(
        &["prlimit", "--nofile=300:300", "--"],
        &database.url,
        &[],
        &[],
    );
    let get = Request::post(GET)
        .basic(ADMIN)
        .json(r#"{"AssociateId":963}"#);
    assert_eq!(fitted.send(get).await.status, 200);
    assert_eq!(
        fitted.log_lines_with("leaves room for fewer connections"),
        1,
        "{:#?}",
        fitted.log.lock().unwrap()
    );
}
