//! `FileStore`: every field round-trips; the file is `0600`; it is replaced atomically (a
//! reader never sees half a file); two processes writing at once lose nothing; a damaged
//! or foreign file is replaced with a warning; expired entries are dropped; a held lock
//! times out into an error; caches in two tasks and in two processes share one token;
//! nothing secret reaches `Debug` or the logs.
//!
//! The two-process tests run this test binary again as a child, with
//! `D365_FILE_STORE_CHILD` selecting what the child does (see [`child_process_entry`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use d365_auth_core::store::{FileStore, TokenStore};
use d365_auth_core::{
    AccessToken, AuthError, Grant, Resource, TokenCache, TokenProvider, TokenRequest, async_trait,
};
use d365_test_support::LogCapture;
use secrecy::ExposeSecret;

const CHILD_VAR: &str = "D365_FILE_STORE_CHILD";
const ORG: &str = "https://contoso.crm.dynamics.com";

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "d365-file-store-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("nested/dir/tokens.json")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn token(secret: &str, lifetime_secs: i64, refresh: Option<&str>) -> AccessToken {
    let now = SystemTime::now();
    let expires_on = if lifetime_secs >= 0 {
        now + Duration::from_secs(lifetime_secs.unsigned_abs())
    } else {
        now - Duration::from_secs(lifetime_secs.unsigned_abs())
    };
    let builder = AccessToken::builder(secret.into(), expires_on, Resource::parse(ORG).unwrap())
        .scope(format!("{ORG}/.default"))
        .refresh_on(now + Duration::from_secs(60))
        .token_type("Bearer");
    match refresh {
        Some(refresh) => builder.refresh_token(refresh.into()).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

fn file_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn keys(path: &Path) -> Vec<String> {
    file_json(path)["entries"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Counts requests; each token is `file-token-<pid>-<n>`.
#[derive(Debug, Default)]
struct Counting {
    calls: AtomicUsize,
}

#[async_trait]
impl TokenProvider for Counting {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(AccessToken::builder(
            format!("file-token-{}-{n}", std::process::id()).into(),
            SystemTime::now() + Duration::from_secs(3600),
            request.resource().clone(),
        )
        .build()
        .unwrap())
    }

    fn grant(&self) -> Grant {
        Grant::new("counting")
    }

    fn cache_key(&self) -> String {
        "https://login.microsoftonline.com/contoso|app".into()
    }
}

#[tokio::test]
async fn every_field_round_trips_and_the_file_is_private() {
    let dir = TempDir::new();
    let store = FileStore::new(dir.file());
    assert!(
        store.load("missing").await.unwrap().is_none(),
        "no file yet"
    );

    let original = token("access-1", 3600, Some("refresh-1"));
    store.save("key", &original).await.unwrap();
    let loaded = store.load("key").await.unwrap().expect("saved");
    assert!(loaded.same_token(&original));
    assert_eq!(
        loaded.refresh_token().map(|s| s.expose_secret().to_owned()),
        Some("refresh-1".into())
    );
    assert_eq!(loaded.scope(), original.scope());
    assert_eq!(loaded.resource(), original.resource());
    assert_eq!(loaded.token_type(), "Bearer");
    let seconds = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(seconds(loaded.expires_on()), seconds(original.expires_on()));
    assert_eq!(
        loaded.refresh_on().map(seconds),
        original.refresh_on().map(seconds)
    );
    assert!(store.load("other").await.unwrap().is_none());

    store.remove("key").await.unwrap();
    assert!(store.load("key").await.unwrap().is_none());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        store.save("key", &original).await.unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.file()), 0o600, "the token file");
        assert_eq!(mode(&dir.0.join("nested/dir/tokens.json.lock")), 0o600);
        assert_eq!(
            mode(&dir.0.join("nested/dir")),
            0o700,
            "a created directory"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_readable_by_others_is_reported_and_rewritten_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let store = FileStore::new(dir.file());
    store
        .save("key", &token("access-1", 3600, None))
        .await
        .unwrap();
    fs::set_permissions(dir.file(), fs::Permissions::from_mode(0o644)).unwrap();

    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    assert!(store.load("key").await.unwrap().is_some());
    assert!(
        logs.text().contains("accessible to other users"),
        "{}",
        logs.text()
    );
    store
        .save("key", &token("access-2", 3600, None))
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(dir.file()).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn the_file_is_replaced_atomically() {
    let dir = TempDir::new();
    let store = FileStore::new(dir.file());
    store
        .save("first", &token("access-0", 3600, None))
        .await
        .unwrap();

    #[cfg(unix)]
    let inode = || std::os::unix::fs::MetadataExt::ino(&fs::metadata(dir.file()).unwrap());
    #[cfg(unix)]
    let before = inode();
    // Held open, the first file keeps its inode: the file system cannot hand the number
    // to a later file, so a different number below means the file really was replaced.
    let held = fs::File::open(dir.file()).unwrap();

    // A reader that keeps parsing the file while it is rewritten: with an in-place write
    // it would sooner or later see a truncated or half-written file.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path) = (Arc::clone(&stop), dir.file());
        std::thread::spawn(move || {
            let mut reads = 0_usize;
            while !stop.load(Ordering::SeqCst) {
                let text = fs::read_to_string(&path).expect("the file is always there");
                let json: serde_json::Value =
                    serde_json::from_str(&text).expect("the file is always complete JSON");
                assert!(json["entries"]["first"].is_object());
                reads += 1;
            }
            reads
        })
    };
    for i in 0..200 {
        // Entries of growing size, so a partial write would differ from a complete one.
        store
            .save(
                &format!("key-{i}"),
                &token(&"x".repeat(i * 10 + 1), 3600, None),
            )
            .await
            .unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);

    #[cfg(unix)]
    assert_ne!(
        before,
        inode(),
        "the file was replaced, not rewritten in place"
    );
    drop(held);
    let leftovers: Vec<_> = fs::read_dir(dir.file().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(keys(&dir.file()).len(), 201);
}

#[tokio::test]
async fn two_processes_writing_at_once_lose_no_entry() {
    const WRITES: usize = 60;
    let dir = TempDir::new();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| spawn_child(&format!("write|{}|{name}|{WRITES}", dir.file().display())))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let keys = keys(&dir.file());
    for name in ["a", "b"] {
        for i in 0..WRITES {
            let key = format!("{name}-{i}");
            assert!(keys.contains(&key), "{key} was lost");
        }
        assert!(keys.contains(&format!("shared-{name}")));
    }
    // Every entry still decodes.
    let store = FileStore::new(dir.file());
    assert!(store.load("a-0").await.unwrap().is_some());
    assert!(store.load("b-0").await.unwrap().is_some());
}

#[tokio::test]
async fn a_damaged_or_foreign_file_is_replaced_with_a_warning() {
    let cases: [(&str, &[u8]); 5] = [
        ("garbage", b"this is not json access-secret"),
        (
            "truncated",
            br#"{"format":"d365-token-store","entries":{"k":{"v":1,"acc"#,
        ),
        ("not utf-8", &[0xff, 0xfe, 0x00, 0x7b]),
        ("foreign json", br#"{"hello":"world"}"#),
        (
            "another format",
            br#"{"format":"somebody-else","entries":{}}"#,
        ),
    ];
    for (name, content) in cases {
        let dir = TempDir::new();
        fs::create_dir_all(dir.file().parent().unwrap()).unwrap();
        fs::write(dir.file(), content).unwrap();
        let store = FileStore::new(dir.file());
        let logs = LogCapture::default();
        let _guard = tracing::subscriber::set_default(logs.subscriber());

        assert!(store.load("k").await.unwrap().is_none(), "{name}: a miss");
        store
            .save("k", &token("access-1", 3600, None))
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(keys(&dir.file()), ["k"], "{name}: replaced");
        assert!(store.load("k").await.unwrap().is_some(), "{name}");
        let text = logs.text();
        assert!(text.contains("WARN"), "{name}: {text}");
        assert!(text.contains("will be replaced"), "{name}: {text}");
        assert!(!text.contains("access-secret"), "{name}: {text}");
    }
}

#[tokio::test]
async fn one_bad_entry_is_skipped_and_the_others_kept() {
    let dir = TempDir::new();
    let store = FileStore::new(dir.file());
    store
        .save("good", &token("access-1", 3600, None))
        .await
        .unwrap();
    let mut json = file_json(&dir.file());
    json["entries"]["bad"] = serde_json::json!({"v": 1, "access_token": 42});
    fs::write(dir.file(), json.to_string()).unwrap();

    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    assert!(store.load("bad").await.unwrap().is_none());
    assert!(store.load("good").await.unwrap().is_some());
    store
        .save("new", &token("access-2", 3600, None))
        .await
        .unwrap();
    assert_eq!(keys(&dir.file()), ["good", "new"]);
    assert!(logs.text().contains("unreadable"), "{}", logs.text());
}

#[tokio::test]
async fn expired_entries_without_a_refresh_token_are_dropped_on_write() {
    let dir = TempDir::new();
    let store = FileStore::builder(dir.file())
        .keep_refresh_tokens_for(Duration::from_secs(3600))
        .build();
    store
        .save("expired", &token("access-1", -10, None))
        .await
        .unwrap();
    assert!(
        !dir.file().exists(),
        "an expired token alone is not written"
    );

    // Write entries directly so that they are expired when the next save reads them.
    store
        .save("valid", &token("access-2", 3600, None))
        .await
        .unwrap();
    let mut json = file_json(&dir.file());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let entry = |expires_on: u64, refresh: Option<&str>| {
        let mut entry = serde_json::json!({
            "v": 1, "access_token": "a", "token_type": "Bearer", "expires_on": expires_on,
            "resource": ORG,
        });
        if let Some(refresh) = refresh {
            entry["refresh_token"] = refresh.into();
        }
        entry
    };
    json["entries"]["expired"] = entry(now - 10, None);
    json["entries"]["expired-with-refresh"] = entry(now - 10, Some("r"));
    json["entries"]["refresh-too-old"] = entry(now - 7200, Some("r"));
    fs::write(dir.file(), json.to_string()).unwrap();
    assert!(
        store.load("expired").await.unwrap().is_some(),
        "loads return expired tokens: they may carry a refresh token"
    );

    store
        .save("new", &token("access-3", 3600, None))
        .await
        .unwrap();
    assert_eq!(keys(&dir.file()), ["expired-with-refresh", "new", "valid"]);
}

#[tokio::test]
async fn a_held_lock_turns_into_an_error_not_a_hang() {
    let dir = TempDir::new();
    let store = FileStore::builder(dir.file())
        .lock_timeout(Duration::from_millis(100))
        .build();
    store
        .save("k", &token("access-1", 3600, None))
        .await
        .unwrap();
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(dir.0.join("nested/dir/tokens.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    let error = store
        .save("k", &token("access-2", 3600, None))
        .await
        .expect_err("the lock is held");
    assert!(error.to_string().contains("locked"), "{error}");
    assert!(
        store.load("k").await.unwrap().is_some(),
        "reading takes no lock"
    );
    drop(lock);
    store
        .save("k", &token("access-2", 3600, None))
        .await
        .unwrap();
}

/// A token file that is a FIFO (which hangs a plain read) or a symlink to `/dev/zero`
/// (which grows a plain read without bound) is refused at once; the store never writes
/// through a symlink planted at the file's or the lock's name.
#[cfg(unix)]
#[tokio::test]
async fn a_fifo_device_or_symlink_never_hangs_or_redirects_the_store() {
    let dir = TempDir::new();
    let path = dir.file();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let store = FileStore::new(&path);
    let started = std::time::Instant::now();
    let error = store.load("key").await.unwrap_err();
    assert!(error.to_string().contains("tokens.json"), "{error}");
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert!(store.load("key").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");

    // A symlink at the file's name is replaced by the write, its target untouched.
    fs::remove_file(&path).unwrap();
    let victim = dir.0.join("victim");
    fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    store.save("key", &token("t", 3600, None)).await.unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(fs::symlink_metadata(&path).unwrap().is_file());

    // A symlink at the lock's name is refused rather than followed.
    let lock = path.with_file_name("tokens.json.lock");
    fs::remove_file(&lock).unwrap();
    let lock_victim = dir.0.join("lock-victim");
    std::os::unix::fs::symlink(&lock_victim, &lock).unwrap();
    assert!(store.save("key", &token("t", 3600, None)).await.is_err());
    assert!(!lock_victim.exists(), "nothing created through the symlink");
}

#[tokio::test]
async fn two_caches_in_two_tasks_share_one_token() {
    let dir = TempDir::new();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.file()));
    let provider = Arc::new(Counting::default());
    let request = TokenRequest::for_url(ORG).unwrap();
    let (fetched_tx, fetched_rx) = tokio::sync::oneshot::channel();

    let first = {
        let cache = TokenCache::builder(Arc::clone(&provider))
            .store(Arc::clone(&store))
            .build();
        let request = request.clone();
        tokio::spawn(async move {
            let token = cache.get(&request).await.unwrap();
            fetched_tx.send(()).unwrap();
            token
        })
    };
    let second = {
        let cache = TokenCache::builder(Arc::clone(&provider))
            .store(Arc::clone(&store))
            .build();
        tokio::spawn(async move {
            fetched_rx.await.unwrap();
            cache.get(&request).await.unwrap()
        })
    };
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.same_token(&second));
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_process_reuses_the_token() {
    let dir = TempDir::new();
    let provider = Arc::new(Counting::default());
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(Arc::new(FileStore::new(dir.file())))
        .build();
    let token = cache
        .get(&TokenRequest::for_url(ORG).unwrap())
        .await
        .unwrap();
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);

    // Two more processes at once, each with its own cache and provider.
    let children: Vec<_> = (0..2)
        .map(|_| spawn_child(&format!("get|{}", dir.file().display())))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        let expected = format!("CHILD calls=0 token={}", token.secret().expose_secret());
        assert!(stdout.contains(&expected), "{stdout}");
    }
}

#[tokio::test]
async fn nothing_secret_in_debug_or_logs() {
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = TempDir::new();
    let store = FileStore::new(dir.file());
    store
        .save(
            "k",
            &token("ACCESS-SECRET-VALUE", 3600, Some("REFRESH-SECRET-VALUE")),
        )
        .await
        .unwrap();
    let loaded = store.load("k").await.unwrap().unwrap();
    // Damage the file around the secrets, then read and write it again.
    let text = fs::read_to_string(dir.file()).unwrap();
    fs::write(dir.file(), &text[..text.len() / 2]).unwrap();
    assert!(store.load("k").await.unwrap().is_none());
    store
        .save(
            "k",
            &token("ACCESS-SECRET-VALUE", 3600, Some("REFRESH-SECRET-VALUE")),
        )
        .await
        .unwrap();
    let cache = TokenCache::builder(Counting::default())
        .store(Arc::new(store.clone()))
        .build();
    cache
        .get(&TokenRequest::for_url(ORG).unwrap())
        .await
        .unwrap();

    let observed = format!("{} {store:?} {loaded:?} {cache:?}", logs.text());
    assert!(
        observed.contains("WARN"),
        "the damage was logged: {observed}"
    );
    for secret in ["ACCESS-SECRET-VALUE", "REFRESH-SECRET-VALUE", "file-token-"] {
        assert!(!observed.contains(secret), "{secret} leaked: {observed}");
    }
}

/// Starts this test binary again as a child running [`child_process_entry`] with `task`.
fn spawn_child(task: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "file_store::child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, task)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Not a test of its own: what a child process does, selected by `D365_FILE_STORE_CHILD`
/// (`write|<file>|<name>|<count>` or `get|<file>`). Without the variable it does nothing.
#[test]
#[allow(clippy::print_stdout)] // the child's report to its parent
fn child_process_entry() {
    let Ok(task) = std::env::var(CHILD_VAR) else {
        return;
    };
    let parts: Vec<&str> = task.split('|').collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = FileStore::new(parts[1]);
        match parts[0] {
            "write" => {
                let (name, count) = (parts[2], parts[3].parse::<usize>().unwrap());
                for i in 0..count {
                    store
                        .save(&format!("{name}-{i}"), &token("access", 3600, None))
                        .await
                        .unwrap();
                    store
                        .save(&format!("shared-{name}"), &token("access", 3600, None))
                        .await
                        .unwrap();
                }
            }
            "get" => {
                let provider = Arc::new(Counting::default());
                let cache = TokenCache::builder(Arc::clone(&provider))
                    .store(Arc::new(store))
                    .build();
                let token = cache
                    .get(&TokenRequest::for_url(ORG).unwrap())
                    .await
                    .unwrap();
                println!(
                    "CHILD calls={} token={}",
                    provider.calls.load(Ordering::SeqCst),
                    token.secret().expose_secret()
                );
            }
            other => panic!("unknown child task {other}"),
        }
    });
}

#[tokio::test]
async fn with_an_encryption_key_the_file_holds_no_token_in_clear_text() {
    use d365_auth_core::store::EncryptionKey;
    let dir = TempDir::new();
    let key = EncryptionKey::generate().unwrap();
    let store = FileStore::builder(dir.file())
        .encryption_key(key.clone())
        .build();
    store
        .save(
            "k1",
            &token("ACCESS-IN-THE-CLEAR", 3600, Some("REFRESH-IN-THE-CLEAR")),
        )
        .await
        .unwrap();
    let text = fs::read_to_string(dir.file()).unwrap();
    assert!(
        !text.contains("ACCESS-IN-THE-CLEAR") && !text.contains("REFRESH-IN-THE-CLEAR"),
        "{text}"
    );
    assert!(text.contains("\"k1\""), "keys stay readable: {text}");
    let again = FileStore::builder(dir.file()).encryption_key(key).build();
    let loaded = again.load("k1").await.unwrap().unwrap();
    assert_eq!(loaded.secret().expose_secret(), "ACCESS-IN-THE-CLEAR");
    assert_eq!(
        loaded.refresh_token().unwrap().expose_secret(),
        "REFRESH-IN-THE-CLEAR"
    );

    // Another key (a lost keyring entry), or none, reads nothing: skipped, not an error.
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let other = FileStore::builder(dir.file())
        .encryption_key(EncryptionKey::generate().unwrap())
        .build();
    assert!(other.load("k1").await.unwrap().is_none());
    assert!(
        FileStore::new(dir.file())
            .load("k1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(logs.text().contains("encryption key"), "{}", logs.text());
    assert!(!logs.text().contains("CLEAR"));

    // A plain entry written before the key is read, and sealed on the next write.
    let plain_dir = TempDir::new();
    FileStore::new(plain_dir.file())
        .save("old", &token("OLD-PLAIN", 3600, None))
        .await
        .unwrap();
    let key = EncryptionKey::generate().unwrap();
    let sealed = FileStore::builder(plain_dir.file())
        .encryption_key(key)
        .build();
    assert!(sealed.load("old").await.unwrap().is_some());
    sealed.save("new", &token("NEW", 3600, None)).await.unwrap();
    assert!(
        !fs::read_to_string(plain_dir.file())
            .unwrap()
            .contains("OLD-PLAIN")
    );
}
