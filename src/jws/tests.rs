use super::*;

fn compact(header: &str, payload: &str, sig: &str) -> String {
    format!("{}.{}.{}", encode(header.as_bytes()), encode(payload.as_bytes()), sig)
}

#[test]
fn a_well_formed_compact_jws_parses() {
    let token = compact(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#, "c2ln");
    let parsed = parse(&token, 8192).unwrap();
    assert_eq!(parsed.header["alg"], "RS256");
    assert_eq!(parsed.payload().unwrap()["sub"], "a");
    assert_eq!(parsed.signature().unwrap(), b"sig");
}

#[test]
fn the_payload_segment_is_what_parse_finds_between_the_first_two_dots() {
    let token = compact(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#, "c2ln");
    assert_eq!(payload_segment(&token), parse(&token, 8192).unwrap().payload_b64);
    for (text, payload) in
        [("a.b.c", "b"), ("a..c", ""), ("a.b", ""), ("a.b.c.d", "b"), ("abc", ""), ("", ""), (".é.", "é")]
    {
        assert_eq!(payload_segment(text), payload, "{text}");
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let token = "a".repeat(9000);
    assert_eq!(parse(&token, 8192).unwrap_err(), JwsError::TooLarge);
}

#[test]
fn anything_but_three_segments_is_refused() {
    for token in ["abc", "a.b", "a.b.c.d", "a.b.c.d.e", "..", "a..c"] {
        assert!(parse(token, 8192).is_err(), "{token}");
    }
    assert_eq!(parse(&"a.".repeat(10_000), 1 << 20).unwrap_err(), JwsError::Encoding);
}

#[test]
fn padding_and_foreign_alphabets_are_refused() {
    let good = compact(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#, "c2ln");
    for bad in
        [format!("{good}=="), good.replace("c2ln", "c2l+"), good.replace("c2ln", "c2l/"), good.replace("c2ln", "c2 n")]
    {
        assert!(parse(&bad, 8192).is_err(), "{bad}");
    }
    let padded_header = format!("{}=.{}", encode(br#"{"alg":"RS256"}"#), "e30.c2ln");
    assert!(parse(&padded_header, 8192).is_err());
}

#[test]
fn non_zero_trailing_bits_are_refused() {
    // "c2k" is "si"; "c2l" carries the same bytes plus non-zero unused bits.
    assert_eq!(decode("c2k").ok(), Some(b"si".to_vec()));
    assert!(decode("c2l").is_err());
}

#[test]
fn duplicate_members_are_refused_at_any_depth() {
    assert!(object(br#"{"a":1,"a":2}"#).is_none());
    assert!(object(br#"{"a":{"b":1,"b":1}}"#).is_none());
    assert!(object(br#"{"a":[{"b":1,"b":2}]}"#).is_none());
    assert!(object(br#"{"a":{"b":1},"c":{"b":1}}"#).is_some());
}

#[test]
fn only_json_objects_are_accepted() {
    for text in [&b"[1]"[..], b"\"s\"", b"42", b"null", b"not json", b"{\"a\":1", b"\xef\xbb\xbf{}", b"\xff\xfe"] {
        assert!(object(text).is_none(), "{:?}", String::from_utf8_lossy(text));
    }
    assert!(object(br#"{"kid":"\ud800"}"#).is_none(), "lone surrogate");
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let deep = format!("{{\"x\":{}}}", "[".repeat(100_000));
    assert!(object(deep.as_bytes()).is_none());
}

#[test]
fn a_bad_header_is_a_header_error() {
    let token = compact(r#"["RS256"]"#, r#"{"sub":"a"}"#, "c2ln");
    assert_eq!(parse(&token, 8192).unwrap_err(), JwsError::Header);
}
