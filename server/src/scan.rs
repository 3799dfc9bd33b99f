//! `keyport scan`: finds Keyport keys in files, offline. It walks the paths given (respecting
//! `.gitignore`, `.ignore` and hidden-file rules through the `ignore` crate, but looking into
//! dotfiles such as `.env`; `.git` itself is skipped), reads text files (a NUL byte in the first
//! 8 KiB marks a binary one), and reports every `kp_` token whose checksum is valid, as
//! `file:line:column` and the key's display start, never the whole key. With `--report`, the
//! keys found go to a Keyport server's leak endpoint, which revokes the live ones.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use domain::keys::{
    PlainKey,
    format::{KEY_LEN, PREFIX},
};

/// Files larger than this are skipped (keys live in source and configuration, not in dumps).
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// How much of a file decides whether it is binary.
const SNIFF: usize = 8 * 1024;

/// A key found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in bytes.
    pub column: usize,
    pub key: PlainKey,
}

/// What a scan saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub skipped_binary: u64,
    pub findings: Vec<Finding>,
    pub elapsed: Duration,
}

/// Every valid key in `text`: `(line, column, key)`. A `kp_` inside a longer word, or followed
/// by more letters and digits than a key has, is not a key.
pub fn find_in(text: &[u8]) -> Vec<(usize, usize, PlainKey)> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let (mut line, mut line_start, mut counted) = (1, 0, 0);
    for at in memchr::memmem::find_iter(text, PREFIX.as_bytes()) {
        if at > 0 && word(text[at - 1]) {
            continue;
        }
        let Some(candidate) = text.get(at..at + KEY_LEN) else {
            continue;
        };
        if text
            .get(at + KEY_LEN)
            .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            continue;
        }
        let Ok(key) = std::str::from_utf8(candidate)
            .map_err(drop)
            .and_then(|t| PlainKey::parse(t).map_err(drop))
        else {
            continue;
        };
        for (i, b) in text[counted..at].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = counted + i + 1;
            }
        }
        counted = at;
        found.push((line, at - line_start + 1, key));
    }
    found
}

fn scan_file(path: &Path, summary: &mut Summary) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !meta.is_file() || meta.len() > MAX_FILE {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    summary.files += 1;
    summary.bytes += bytes.len() as u64;
    if bytes[..bytes.len().min(SNIFF)].contains(&0) {
        summary.skipped_binary += 1;
        return;
    }
    for (line, column, key) in find_in(&bytes) {
        summary.findings.push(Finding {
            path: path.to_owned(),
            line,
            column,
            key,
        });
    }
}

/// Scans `paths` (files or directories; the current directory when empty).
pub fn scan(paths: &[PathBuf]) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let roots: Vec<PathBuf> = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let mut walk = ignore::WalkBuilder::new(&roots[0]);
    for root in &roots[1..] {
        walk.add(root);
    }
    walk.hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git");
    for entry in walk.build().flatten() {
        if entry.file_type().is_some_and(|t| t.is_file()) {
            scan_file(entry.path(), &mut summary);
        }
    }
    summary
        .findings
        .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    summary.elapsed = started.elapsed();
    summary
}

/// Sends the keys found to `server`'s `POST /v1/leaks` with an admin's management key; returns
/// each key's start and whether it was live (`true_positive`).
pub async fn report(
    server: &str,
    token: &str,
    findings: &[Finding],
) -> anyhow::Result<Vec<(String, bool)>> {
    let body: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "token": f.key.expose(),
                "type": "keyport_api_key",
                "url": format!("file://{}#L{}", f.path.display(), f.line),
                "source": "keyport scan",
            })
        })
        .collect();
    let url = format!("{}/v1/leaks", server.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {text}");
    }
    let verdicts: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{url} answered something that is not a list of verdicts: {e}")
    })?;
    Ok(findings
        .iter()
        .zip(verdicts)
        .map(|(f, v)| (f.key.start(), v["label"] == "true_positive"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_with_valid_checksums_where_they_are() {
        let key = PlainKey::generate();
        let k = key.expose();
        let mut broken = k.to_owned();
        broken.replace_range(10..11, if &k[10..11] == "A" { "B" } else { "A" });
        let text = format!(
            "first line\nAPI_KEY={k}\n  also \"{k}\" and mistyped {broken}\nxkp_{tail} {k}more\n",
            tail = &k[3..]
        );
        let found = find_in(text.as_bytes());
        let places: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(places, [(2, 9), (3, 9)]);
        assert!(found.iter().all(|(_, _, f)| f == &key));
        assert!(find_in(b"kp_").is_empty());
        assert!(find_in(&k.as_bytes()[..KEY_LEN - 1]).is_empty());
    }
}
