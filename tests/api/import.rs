//! `presence user import`, run as a person runs it, beside a running server.

use std::process::Output;

use crate::helpers::*;

both_backends!(
    csv_users_sign_in_at_a_running_server_at_once,
    json_users_are_imported_from_standard_input,
    a_bad_record_aborts_the_import_and_names_its_line,
    skip_invalid_imports_the_rest_and_names_the_others,
    importing_twice_changes_nothing_the_second_time,
    conflicts_with_existing_users_are_refused,
);

/// A file in a folder of its own, and the database it is imported into.
struct Import {
    dir: tempfile::TempDir,
    database_url: String,
}

impl Import {
    fn new(app: &TestApp) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            database_url: app.database_url.clone(),
        }
    }

    /// Writes `contents` to `name` and imports it with `flags`.
    fn file(&self, name: &str, contents: &str, flags: &[&str]) -> Output {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let mut args = vec!["user", "import", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        self.run(&args, "")
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_presence(&self.database_url, args, stdin)
    }

    fn list(&self) -> String {
        succeeded(&self.run(&["user", "list"], "")).0
    }
}

/// Standard output and standard error of a command that succeeded.
fn succeeded(output: &Output) -> (String, String) {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(output.status.success(), "{stderr}");
    (String::from_utf8(output.stdout.clone()).unwrap(), stderr)
}

/// Standard error of a command that failed, having printed nothing on standard output.
fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A Get of one's own presence, signed in with a password: 200 when it is right.
async fn signs_in(app: &TestApp, login: &str, password: &str, associate_id: i32) -> bool {
    let response = app
        .send(
            Request::post(GET)
                .basic((login, password))
                .json(&format!(r#"{{"AssociateId":{associate_id}}}"#)),
        )
        .await;
    response.status == 200
}

/// Every user's row as the store holds it, password hashes included.
async fn users_with_hashes(app: &TestApp) -> Vec<(String, Option<String>)> {
    let mut rows = Vec::new();
    for user in app.store.list_users().await.unwrap() {
        let credentials = app.store.credentials(&user.login).await.unwrap().unwrap();
        rows.push((
            format!("{user:?}"),
            credentials.password_hash.as_deref().map(str::to_owned),
        ));
    }
    rows
}

const CSV: &str = "login,associate_id,admin,password\n\
                   ivan,100,no,ivan-pw\n\
                   \"smith, john\",101,yes,\" spaced, quoted \"\n\
                   nopass,102,,\n";

async fn csv_users_sign_in_at_a_running_server_at_once() {
    let app = spawn_app().await;
    // The server has looked at the database already, so it learns of the users as of any
    // added beside it.
    assert!(!signs_in(&app, "ivan", "ivan-pw", 100).await);
    let import = Import::new(&app);
    let (stdout, stderr) = succeeded(&import.file("users.csv", CSV, &[]));
    assert!(
        stdout.starts_with("imported 3, unchanged 0, invalid 0 (from "),
        "{stdout}"
    );
    assert!(stderr.contains("hashed 2/2 passwords"), "{stderr}");
    assert!(signs_in(&app, "ivan", "ivan-pw", 100).await);
    assert!(!signs_in(&app, "ivan", "wrong", 100).await);
    assert!(signs_in(&app, "smith, john", " spaced, quoted ", 101).await);
    let list = import.list();
    assert!(list.contains("smith, john               yes"), "{list}");
    assert!(list.contains("nopass"), "{list}");
    let nopass = app.store.credentials("nopass").await.unwrap().unwrap();
    assert_eq!(nopass.password_hash, None);
    assert!(!nopass.is_admin);
}

async fn json_users_are_imported_from_standard_input() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let json = r#"[
        {"login": "jana", "associateId": 200, "password": "jana-pw"},
        {"login": "boss2", "associateId": 201, "admin": true, "password": null},
        {"login": "nulls", "associateId": 202, "admin": null}
    ]"#;
    let (stdout, _) = succeeded(&import.run(&["user", "import", "-"], json));
    assert_eq!(
        stdout,
        "imported 3, unchanged 0, invalid 0 (from standard input)\n"
    );
    assert!(signs_in(&app, "jana", "jana-pw", 200).await);
    let boss = app.store.credentials("boss2").await.unwrap().unwrap();
    assert!(boss.is_admin && boss.password_hash.is_none());
    let nulls = app.store.credentials("nulls").await.unwrap().unwrap();
    assert!(!nulls.is_admin && nulls.password_hash.is_none());

    // A password of the wrong type is refused without repeating it.
    let numeric = r#"[{"login": "digits", "associateId": 203, "password": 918273645}]"#;
    let stderr = failed(&import.run(&["user", "import", "-"], numeric));
    assert!(
        stderr.contains("line 1: password is not a string"),
        "{stderr}"
    );
    assert!(!stderr.contains("918273645"), "{stderr}");
}

async fn a_bad_record_aborts_the_import_and_names_its_line() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let before = import.list();
    let csv = "login,associate_id,admin,password\n\
               ok1,300,no,pw\n\
               bad,-4,no,pw\n\
               ok2,301,no,\n\
               ok1,302,no,\n";
    let stderr = failed(&import.file("users.csv", csv, &[]));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(
        lines[0],
        "line 3: the associate id '-4' is not a positive whole number"
    );
    assert_eq!(lines[1], "line 5: the login 'ok1' is on line 2 too");
    assert!(
        lines[2].starts_with("error: 2 of the 4 records of ")
            && lines[2].contains("nothing was imported"),
        "{stderr}"
    );
    assert_eq!(import.list(), before, "nothing was imported");

    let json = "[\n{\"login\": \"ok\", \"associateId\": 303},\n\n  {\"login\": \"x\"}\n]";
    let stderr = failed(&import.file("users.json", json, &[]));
    assert!(
        stderr.starts_with("line 4: missing field `associateId`\n"),
        "{stderr}"
    );
    assert_eq!(import.list(), before, "nothing was imported");

    // A file that is not CSV at all is one error, whatever the flags.
    let stderr = failed(&import.file(
        "broken.csv",
        "login,associate_id\n\"x,1\n",
        &["--skip-invalid"],
    ));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("line 2: a quoted field is not closed"),
        "{stderr}"
    );
}

async fn skip_invalid_imports_the_rest_and_names_the_others() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let csv = "login,associate_id,admin,password\n\
               ok1,400,no,ok1-pw\n\
               bad,400,no,pw\n\
               ,401,no,\n\
               ok2,402,maybe,\n\
               ok3,403,1,\n";
    let (stdout, stderr) = succeeded(&import.file("users.csv", csv, &["--skip-invalid"]));
    assert!(
        stdout.starts_with("imported 2, unchanged 0, invalid 3 (from "),
        "{stdout}"
    );
    for line in [
        "line 3: skipped: associate 400 is on line 2 too",
        "line 4: skipped: the login is empty",
        "line 5: skipped: admin is 'maybe'; expected true/false, yes/no, 1/0 or nothing",
    ] {
        assert!(stderr.lines().any(|l| l == line), "{line}\n{stderr}");
    }
    assert!(signs_in(&app, "ok1", "ok1-pw", 400).await);
    assert!(
        app.store
            .credentials("ok3")
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
    assert_eq!(app.store.credentials("ok2").await.unwrap(), None);
}

async fn importing_twice_changes_nothing_the_second_time() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    succeeded(&import.file("users.csv", CSV, &[]));
    let before = users_with_hashes(&app).await;
    let changes = app.store.user_changes_after(0, usize::MAX).await.unwrap();
    let (stdout, stderr) = succeeded(&import.file("users.csv", CSV, &[]));
    assert!(
        stdout.starts_with("imported 0, unchanged 3, invalid 0"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("hashed"),
        "no password was hashed: {stderr}"
    );
    assert_eq!(users_with_hashes(&app).await, before);
    assert_eq!(
        app.store.user_changes_after(0, usize::MAX).await.unwrap(),
        changes,
        "not even the change log moved"
    );
    assert!(signs_in(&app, "ivan", "ivan-pw", 100).await);
}

async fn conflicts_with_existing_users_are_refused() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let before = users_with_hashes(&app).await;
    // anna (associate 2) is in every test database.
    let csv = format!(
        "login,associate_id\n\
         {login},500\n\
         zed,{USER_ID}\n\
         fine,501\n",
        login = USER.0
    );
    let stderr = failed(&import.file("users.csv", &csv, &[]));
    assert!(
        stderr.starts_with(&format!(
            "line 2: the login 'anna' is associate {USER_ID}'s already\n\
             line 3: associate {USER_ID} has the login 'anna' already\n"
        )),
        "{stderr}"
    );
    assert_eq!(users_with_hashes(&app).await, before);

    // The same user, spelt otherwise and an administrator in the file: left as it is, and said.
    let csv = format!("login,associate_id,admin\nANNA,{USER_ID},yes\nfine,501,no\n");
    let (stdout, stderr) = succeeded(&import.file("users.csv", &csv, &[]));
    assert!(
        stdout.starts_with("imported 1, unchanged 1 (1 differ from the file), invalid 0"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "line 2: 'ANNA' (associate 2) is there already and was left as it is, though its login is spelt 'anna' there and it is no administrator there and it has a password there"
        ),
        "{stderr}"
    );
    assert!(signs_in(&app, USER.0, USER.1, USER_ID).await);
    assert!(
        !app.store
            .credentials("anna")
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
}
