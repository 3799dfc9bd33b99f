//! The key format is frozen once shipped: these tests hold it to the published test vectors.
use domain::keys::format::{self, MalformedKey, PlainKey};
use proptest::prelude::*;

#[test]
fn published_vectors_pass() {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("data/key-format-vectors.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 5);
    for v in vectors {
        let body = v["body"].as_str().unwrap();
        assert_eq!(
            crc32fast::hash(body.as_bytes()) as u64,
            v["crc32"].as_u64().unwrap()
        );
        assert_eq!(
            format::checksum(body),
            v["checksum"].as_str().unwrap(),
            "{body}"
        );
        let key = v["key"].as_str().unwrap();
        assert_eq!(format!("kp_{body}{}", format::checksum(body)), key);
        let parsed = PlainKey::parse(key).unwrap();
        assert_eq!(parsed.expose(), key);
        assert_eq!(parsed.start(), format!("kp_{}", &body[..6]));
    }
}

#[test]
fn the_prefix_and_lengths_are_frozen() {
    assert_eq!(format::PREFIX, "kp_");
    assert_eq!(format::BODY_LEN, 40);
    assert_eq!(format::CHECKSUM_LEN, 6);
    assert_eq!(format::KEY_LEN, 49);
}

#[test]
fn generated_keys_parse_and_differ() {
    let a = PlainKey::generate();
    let b = PlainKey::generate();
    assert_ne!(a, b);
    for k in [&a, &b] {
        assert_eq!(k.expose().len(), 49);
        assert!(k.expose().starts_with("kp_"));
        assert_eq!(PlainKey::parse(k.expose()).unwrap(), *k);
        assert_eq!(k.hash().len(), 64);
        assert_eq!(k.start().len(), 9);
    }
    // Never printed whole.
    let debug = format!("{a:?}");
    assert!(!debug.contains(a.expose()), "{debug}");
}

#[test]
fn malformed_keys_say_why() {
    let good = PlainKey::generate().expose().to_owned();
    assert_eq!(PlainKey::parse("sk_live_abc"), Err(MalformedKey::Prefix));
    assert_eq!(PlainKey::parse(&good[..48]), Err(MalformedKey::Length));
    assert_eq!(
        PlainKey::parse(&format!("{good}x")),
        Err(MalformedKey::Length)
    );
    let mut bad = good.clone();
    bad.replace_range(10..11, "-");
    assert_eq!(PlainKey::parse(&bad), Err(MalformedKey::Alphabet));
    assert_eq!(PlainKey::parse(""), Err(MalformedKey::Prefix));
    assert_eq!(PlainKey::parse("kp_é"), Err(MalformedKey::Length));
}

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

proptest! {
    #[test]
    fn random_text_never_panics_the_parser(s in "\\PC{0,80}") {
        let _ = PlainKey::parse(&s);
        let _ = PlainKey::parse(&format!("kp_{s}"));
    }

    #[test]
    fn one_changed_character_fails_the_checksum(pos in 3usize..49, pick in 0usize..61) {
        let key = PlainKey::generate().expose().to_owned();
        let old = key.as_bytes()[pos];
        let candidates: Vec<u8> = ALPHABET.iter().copied().filter(|c| *c != old).collect();
        let mut bytes = key.into_bytes();
        bytes[pos] = candidates[pick];
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(PlainKey::parse(&changed), Err(MalformedKey::Checksum));
    }
}
