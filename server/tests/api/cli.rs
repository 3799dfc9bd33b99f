//! The `keyport` binary's admin commands, run as a user would run them.
use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

fn keyport(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyport"))
        .args(args)
        .env_remove("KEYPORT_ADMIN_PASSWORD")
        .env_remove("KEYPORT_SECRET_KEY")
        .env_remove("KEYPORT_DATABASE_URL")
        .env("KEYPORT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keyport binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = keyport(
        &[
            "admin",
            "create",
            "--email",
            "Root@Example.com",
            "--data-dir",
            data,
        ],
        "tidal basin marmalade\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Created admin root@example.com"),
        "{stdout}"
    );

    // The account is an admin in the data directory's database, and the server key was created.
    let db = domain::Database::connect(&format!("sqlite://{data}/keyport.db"))
        .await
        .unwrap();
    let accounts = domain::accounts::Accounts::new(db, domain::secret_key::SecretKey::generate());
    let admin = accounts
        .find_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.role, domain::accounts::Role::Admin);
    assert!(!admin.totp_enabled, "admins enrol 2FA at first sign-in");
    assert!(dir.path().join("secret.key").exists());

    // The same email again is refused with a clear message and a failing exit code.
    let again = keyport(
        &[
            "admin",
            "create",
            "--email",
            "root@example.com",
            "--data-dir",
            data,
        ],
        "tidal basin marmalade\n",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot be created"));
}

#[test]
fn admin_create_rejects_weak_or_missing_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let weak = keyport(
        &[
            "admin",
            "create",
            "--email",
            "a@example.com",
            "--data-dir",
            data,
        ],
        "password1234\n",
    );
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("too common"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let empty = keyport(
        &[
            "admin",
            "create",
            "--email",
            "a@example.com",
            "--data-dir",
            data,
        ],
        "",
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("KEYPORT_ADMIN_PASSWORD"));
}

#[tokio::test]
async fn keys_create_prints_only_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = keyport(
        &[
            "admin",
            "create",
            "--email",
            "ops@example.com",
            "--data-dir",
            data,
        ],
        "tidal basin marmalade\n",
    );
    assert!(out.status.success());
    let out = keyport(
        &[
            "keys",
            "create",
            "--owner",
            "ops@example.com",
            "--api",
            "keyport",
            "--scopes",
            "keys:read,audit:read",
            "--name",
            "ci",
            "--expires-in-days",
            "30",
            "--data-dir",
            data,
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = stdout.trim_end();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on stdout: {stdout:?}"
    );
    assert!(domain::keys::PlainKey::parse(key).is_ok(), "{key}");

    let db = domain::Database::connect(&format!("sqlite://{data}/keyport.db"))
        .await
        .unwrap();
    let stored = domain::keys::Keys::new(db.clone())
        .find_by_hash(&domain::keys::format::hash_hex(key))
        .await
        .unwrap()
        .expect("the key is stored (hashed)");
    assert_eq!(stored.scopes, ["audit:read", "keys:read"]);
    assert_eq!(stored.name, "ci");
    let days = (stored.expires_at.unwrap() - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    db.close().await.ok();

    // Mistakes are explained and create nothing.
    let out = keyport(
        &[
            "keys",
            "create",
            "--owner",
            "nobody@example.com",
            "--api",
            "keyport",
            "--scopes",
            "keys:read",
            "--name",
            "x",
            "--data-dir",
            data,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no user has the email nobody@example.com")
    );
    let out = keyport(
        &[
            "keys",
            "create",
            "--owner",
            "ops@example.com",
            "--api",
            "keyport",
            "--scopes",
            "nope",
            "--name",
            "x",
            "--data-dir",
            data,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--scopes: keyport has no scope named \"nope\"")
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn scan_finds_valid_keys_in_text_files_and_never_prints_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let good = domain::keys::PlainKey::generate();
    let other = domain::keys::PlainKey::generate();
    let mut mistyped = good.expose().to_owned();
    let flipped = if mistyped.ends_with('A') { "B" } else { "A" };
    mistyped.replace_range(mistyped.len() - 1.., flipped);
    std::fs::create_dir_all(root.join("src/deep")).unwrap();
    std::fs::write(
        root.join("src/config.py"),
        format!("# settings\nKEY = \"{}\"\n", good.expose()),
    )
    .unwrap();
    std::fs::write(
        root.join("src/deep/notes.md"),
        format!("typo: {mistyped}\nfine: {}\n", other.expose()),
    )
    .unwrap();
    std::fs::write(
        root.join(".env"),
        format!("KEYPORT_KEY={}\n", good.expose()),
    )
    .unwrap();
    // A binary file, an ignored file and the git directory are not read.
    let mut binary = vec![0u8, 1, 2, 3];
    binary.extend_from_slice(good.expose().as_bytes());
    std::fs::write(root.join("image.bin"), binary).unwrap();
    std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
    std::fs::write(root.join("ignored.txt"), good.expose()).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/COMMIT_EDITMSG"), good.expose()).unwrap();

    let out = keyport(&["scan", root.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1), "keys found: exit 1");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |path: &str, line: u32, col: u32, key: &domain::keys::PlainKey| {
        format!(
            "{}:{line}:{col}: {}… (a Keyport key: its checksum is valid)",
            root.join(path).display(),
            key.start()
        )
    };
    assert_eq!(
        lines,
        [
            at(".env", 1, 13, &good),
            at("src/config.py", 2, 8, &good),
            at("src/deep/notes.md", 2, 7, &other),
        ]
    );
    assert!(!stdout.contains(good.expose()) && !stdout.contains(other.expose()));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("3 Keyport key(s) found"), "{stderr}");
    assert!(stderr.contains("1 binary skipped"), "{stderr}");

    // A clean tree: exit 0.
    std::fs::remove_file(root.join(".env")).unwrap();
    std::fs::remove_file(root.join("src/config.py")).unwrap();
    std::fs::remove_file(root.join("src/deep/notes.md")).unwrap();
    let out = keyport(&["scan", root.to_str().unwrap()], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
