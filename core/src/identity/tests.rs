#![allow(clippy::unwrap_used)]
use super::*;

const NOW_MS: i64 = 1_800_000_000_000;
const SECRET: &[u8] = b"a shared key of the site's sessions";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(header: &str, claims: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

fn source(jwt: Option<JwtCheck>) -> IdentitySource {
    IdentitySource {
        unit: "account".into(),
        source: AttributeSource::Cookie,
        name: "session".into(),
        jwt,
    }
}

fn check(algorithm: JwtAlgorithm) -> JwtCheck {
    JwtCheck {
        algorithm,
        claim: "sub".into(),
        secret: Some("CLEAVE_JWT_SESSION".into()),
        keys: Vec::new(),
        issuer: None,
        audience: None,
        leeway_s: 0,
    }
}

fn secret(name: &str) -> Option<Vec<u8>> {
    (name == "CLEAVE_JWT_SESSION").then(|| SECRET.to_vec())
}

fn claims(extra: &str) -> String {
    let exp = NOW_MS / 1000 + 600;
    format!(r#"{{"sub":"acct-42","exp":{exp}{extra}}}"#)
}

const HS: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[test]
fn a_plain_source_takes_the_value_as_sent_and_says_so() {
    let got = claim(&source(None), " team-7 ", NOW_MS, |_| None).unwrap();
    assert_eq!(got.id, "team-7");
    assert_eq!(got.proof, Proof::Unverified);
    assert_eq!(
        claim(&source(None), "a\u{7}b", NOW_MS, |_| None),
        Err(IdentityError::BadId)
    );
    let long = "x".repeat(MAX_ID_BYTES + 1);
    assert_eq!(
        claim(&source(None), &long, NOW_MS, |_| None),
        Err(IdentityError::BadId)
    );
}

#[test]
fn an_hs256_token_gives_its_claim_once_its_signature_checks_out() {
    let s = source(Some(check(JwtAlgorithm::HS256)));
    let token = hs256(HS, &claims(""), SECRET);
    let got = claim(&s, &token, NOW_MS, secret).unwrap();
    assert_eq!((got.id.as_str(), got.proof), ("acct-42", Proof::Verified));
    // The same token as a bearer header.
    let bearer = format!("Bearer {token}");
    assert_eq!(claim(&s, &bearer, NOW_MS, secret).unwrap().id, "acct-42");
    // An integer claim is an id too.
    let numeric = hs256(HS, &claims("").replace(r#""acct-42""#, "42"), SECRET);
    assert_eq!(claim(&s, &numeric, NOW_MS, secret).unwrap().id, "42");
}

#[test]
fn forged_altered_and_downgraded_tokens_give_nothing() {
    let s = source(Some(check(JwtAlgorithm::HS256)));
    let forged = hs256(HS, &claims(""), b"someone else's key");
    assert_eq!(
        claim(&s, &forged, NOW_MS, secret),
        Err(IdentityError::BadSignature)
    );
    // Another subject under the original signature.
    let token = hs256(HS, &claims(""), SECRET);
    let (_, signature) = token.rsplit_once('.').unwrap();
    let other = hs256(HS, &claims("").replace("acct-42", "acct-1"), SECRET);
    let (input, _) = other.rsplit_once('.').unwrap();
    assert_eq!(
        claim(&s, &format!("{input}.{signature}"), NOW_MS, secret),
        Err(IdentityError::BadSignature)
    );
    // `alg: none` and an unsigned token.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims("").as_bytes())
    );
    assert!(matches!(
        claim(&s, &none, NOW_MS, secret),
        Err(IdentityError::Algorithm { .. })
    ));
    // An RS256 source never takes an HS256 token (key confusion).
    let mut rs = check(JwtAlgorithm::RS256);
    rs.keys = vec![rsa_key(Some("k1"))];
    assert!(matches!(
        claim(&source(Some(rs)), &token, NOW_MS, secret),
        Err(IdentityError::Algorithm { .. })
    ));
    assert_eq!(
        claim(&s, "not.a-token", NOW_MS, secret),
        Err(IdentityError::Malformed)
    );
    // Without the worker secret nothing verifies.
    assert_eq!(
        claim(&s, &token, NOW_MS, |_| None),
        Err(IdentityError::NoSecret("CLEAVE_JWT_SESSION".into()))
    );
}

#[test]
fn lifetime_issuer_and_audience_are_honoured() {
    let mut c = check(JwtAlgorithm::HS256);
    let now_s = NOW_MS / 1000;
    let at = |body: String| hs256(HS, &body, SECRET);
    let s = source(Some(c.clone()));
    let expired = at(format!(r#"{{"sub":"a","exp":{now_s}}}"#));
    assert_eq!(
        claim(&s, &expired, NOW_MS, secret),
        Err(IdentityError::Expired)
    );
    let early = at(claims(&format!(r#","nbf":{}"#, now_s + 30)));
    assert_eq!(
        claim(&s, &early, NOW_MS, secret),
        Err(IdentityError::NotYetValid)
    );
    let forever = at(r#"{"sub":"a"}"#.to_owned());
    assert_eq!(
        claim(&s, &forever, NOW_MS, secret),
        Err(IdentityError::NoExpiry)
    );
    // Leeway covers a clock a little behind.
    c.leeway_s = 60;
    let lenient = source(Some(c.clone()));
    assert!(claim(&lenient, &expired, NOW_MS, secret).is_ok());
    assert!(claim(&lenient, &early, NOW_MS, secret).is_ok());

    c.issuer = Some("https://login.example".into());
    c.audience = Some("shop".into());
    let strict = source(Some(c));
    let good = at(claims(
        r#","iss":"https://login.example","aud":["shop","blog"]"#,
    ));
    assert!(claim(&strict, &good, NOW_MS, secret).is_ok());
    let wrong_iss = at(claims(r#","iss":"https://evil.example","aud":"shop""#));
    assert!(matches!(
        claim(&strict, &wrong_iss, NOW_MS, secret),
        Err(IdentityError::Issuer(_))
    ));
    let wrong_aud = at(claims(r#","iss":"https://login.example","aud":"blog""#));
    assert!(matches!(
        claim(&strict, &wrong_aud, NOW_MS, secret),
        Err(IdentityError::Audience(_))
    ));
}

fn rsa_key(kid: Option<&str>) -> PublicJwk {
    PublicJwk {
        kid: kid.map(str::to_owned),
        kty: "RSA".into(),
        crv: None,
        x: None,
        y: None,
        n: Some(b64(&[0xc5; 256])),
        e: Some(b64(&[1, 0, 1])),
    }
}

fn ec_key(kid: Option<&str>) -> PublicJwk {
    PublicJwk {
        kid: kid.map(str::to_owned),
        kty: "EC".into(),
        crv: Some("P-256".into()),
        x: Some(b64(&[7; 32])),
        y: Some(b64(&[9; 32])),
        n: None,
        e: None,
    }
}

#[test]
fn public_key_tokens_come_back_with_the_signature_to_verify() {
    let mut c = check(JwtAlgorithm::ES256);
    c.secret = None;
    c.keys = vec![ec_key(Some("old")), ec_key(Some("new"))];
    let s = source(Some(c));
    let header = r#"{"alg":"ES256","kid":"new"}"#;
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims("").as_bytes()));
    let token = format!("{input}.{}", b64(&[3; 64]));
    let got = claim(&s, &token, NOW_MS, |_| None).unwrap();
    assert_eq!(got.id, "acct-42");
    let Proof::Signature(pending) = got.proof else {
        panic!("an ES256 token is verified by the platform");
    };
    assert_eq!(pending.keys, vec![1], "the key its kid names");
    assert_eq!(pending.signing_input, input);
    assert_eq!(pending.signature, vec![3; 64]);

    let unknown = token.replace(
        &b64(header.as_bytes()),
        &b64(br#"{"alg":"ES256","kid":"gone"}"#),
    );
    assert_eq!(
        claim(&s, &unknown, NOW_MS, |_| None),
        Err(IdentityError::UnknownKey("gone".into()))
    );
}

#[test]
fn sources_are_checked_with_every_problem_named() {
    let mut hs_without_secret = check(JwtAlgorithm::HS256);
    hs_without_secret.secret = Some("CLEAVE_SIGNING_KEY".into());
    let mut es_with_rsa = check(JwtAlgorithm::ES256);
    es_with_rsa.secret = None;
    es_with_rsa.keys = vec![rsa_key(None)];
    let mut rs_short = check(JwtAlgorithm::RS256);
    rs_short.secret = None;
    let mut short = rsa_key(None);
    short.n = Some(b64(&[1; 128]));
    rs_short.keys = vec![short];
    let mut sources = vec![
        source(Some(hs_without_secret)),
        source(Some(es_with_rsa)),
        source(Some(rs_short)),
        source(None),
    ];
    sources[3].unit = "user".into();
    sources[3].source = AttributeSource::Query;
    sources[3].name = "bad name".into();
    let mut problems = Problems::default();
    check_sources(&sources, &mut problems);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "identity[0].jwt.secret",
            "identity[1].jwt.keys[0]",
            "identity[2].jwt.keys[0]",
            "identity[3].unit",
            "identity[3].source",
            "identity[3].name",
        ]
    );

    let mut fine_es = check(JwtAlgorithm::ES256);
    fine_es.secret = None;
    fine_es.keys = vec![ec_key(Some("k"))];
    let mut fine = Problems::default();
    check_sources(
        &[
            source(Some(check(JwtAlgorithm::HS256))),
            source(Some(fine_es)),
        ],
        &mut fine,
    );
    assert!(fine.is_empty(), "{fine:?}");
}
