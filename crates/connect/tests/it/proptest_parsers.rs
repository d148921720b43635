//! Property tests for the connection string parser: no panic on any input, redacted
//! strings round-trip, errors never show a secret.

use d365_connect::ConnectionString;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Modest, file-free settings so `cargo test --workspace` stays fast and writes nothing.
fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Every generated secret starts with this; nothing else generated contains a `Z`.
const MARKER: &str = "ZQX";

/// A key alias written in a random case, with optional spaces around it.
fn key(aliases: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(aliases),
        proptest::collection::vec(any::<bool>(), 32),
        any::<bool>(),
    )
        .prop_map(|(alias, upper, pad)| {
            let cased: String = alias
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| {
                    if *up {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            if pad { format!(" {cased} ") } else { cased }
        })
}

/// A value written quoted (with `'` or `"`, the quote doubled inside) or, when the grammar
/// allows it, unquoted.
fn write_value(value: &str, style: u8) -> String {
    let safe_unquoted = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:/@".contains(c));
    match style % 3 {
        0 if safe_unquoted => value.to_owned(),
        1 => format!("\"{}\"", value.replace('"', "\"\"")),
        _ => format!("'{}'", value.replace('\'', "''")),
    }
}

/// A non-secret value: printable, with the grammar's special characters, never a `Z`.
fn plain_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Y0-9._:/@-]{1,16}",
        // A blank value is an absent one (a blank client id is missing).
        "[a-zA-Y0-9 ;='\"._-]{1,16}".prop_filter("not blank", |v| !v.trim().is_empty()),
    ]
}

/// A secret: the marker, then characters that could be misread as grammar.
fn secret_value() -> impl Strategy<Value = String> {
    "[0-9A-F;=' \"#]{3,12}".prop_map(|tail| format!("{MARKER}{tail}"))
}

/// One generated `ClientSecret` connection string and what it holds.
#[derive(Debug, Clone)]
struct Generated {
    pairs: Vec<(String, String)>,
    org: String,
    client_id: String,
    domain: Option<String>,
    home_realm_uri: Option<String>,
    secret: String,
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        key(&["AuthType", "AuthenticationType"]),
        key(&["ServiceUri", "Service Uri", "Url", "Server"]),
        "[a-y][a-y0-9]{0,10}",
        key(&["ClientId", "AppId", "ApplicationId"]),
        plain_value(),
        key(&["ClientSecret", "Secret"]),
        secret_value(),
        proptest::option::of((key(&["Domain"]), plain_value())),
        proptest::option::of((key(&["HomeRealmUri", "Home Realm Uri"]), plain_value())),
        proptest::collection::vec(any::<u8>(), 8),
        any::<u64>(),
    )
        .prop_map(
            |(
                auth_key,
                url_key,
                org,
                id_key,
                client_id,
                secret_key,
                secret,
                domain,
                realm,
                styles,
                shuffle,
            )| {
                let mut pairs = vec![
                    (auth_key, write_value("ClientSecret", styles[0])),
                    (
                        url_key,
                        write_value(&format!("https://{org}.crm.dynamics.com"), styles[1]),
                    ),
                    (id_key, write_value(&client_id, styles[2])),
                    (secret_key, write_value(&secret, styles[3].max(1))),
                ];
                if let Some((k, v)) = &domain {
                    pairs.push((k.clone(), write_value(v, styles[4])));
                }
                if let Some((k, v)) = &realm {
                    pairs.push((k.clone(), write_value(v, styles[5])));
                }
                // Order does not matter to the grammar: rotate by a random amount.
                let len = pairs.len();
                #[allow(clippy::cast_possible_truncation)]
                pairs.rotate_left((shuffle % len as u64) as usize);
                Generated {
                    pairs,
                    org,
                    client_id,
                    domain: domain.map(|(_, v)| v),
                    home_realm_uri: realm.map(|(_, v)| v),
                    secret,
                }
            },
        )
}

fn join(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connection_string_parse_never_panics(text in any::<String>()) {
        let _ = ConnectionString::parse(&text);
    }

    #[test]
    fn connection_string_parse_never_panics_on_grammar_soup(
        text in "[a-zA-Z ;='\"\\t\\r\\n\u{1}\u{a0}é]{0,64}",
    ) {
        let _ = ConnectionString::parse(&text);
    }

    #[test]
    fn redacted_connection_strings_round_trip(generated in generated()) {
        let text = join(&generated.pairs);
        let parsed = ConnectionString::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        prop_assert_eq!(parsed.url().as_str(), format!("https://{}.crm.dynamics.com", generated.org));
        prop_assert_eq!(parsed.client_id(), Some(generated.client_id.as_str()));
        prop_assert_eq!(parsed.get("Domain"), generated.domain.as_deref());
        prop_assert_eq!(parsed.get("HomeRealmUri"), generated.home_realm_uri.as_deref());
        prop_assert!(parsed.has("ClientSecret") && parsed.holds_secret());

        let redacted = parsed.to_redacted_string();
        prop_assert!(!redacted.contains(MARKER), "{redacted:?}");
        let debug = format!("{parsed:?}");
        prop_assert!(!debug.contains(MARKER), "{}", debug);
        let again = ConnectionString::parse(&redacted)
            .map_err(|error| TestCaseError::fail(format!("{redacted:?}: {error}")))?;
        prop_assert_eq!(again.auth_type(), parsed.auth_type());
        prop_assert_eq!(again.url().as_str(), parsed.url().as_str());
        prop_assert_eq!(again.client_id(), parsed.client_id());
        prop_assert_eq!(again.get("Domain"), parsed.get("Domain"));
        prop_assert_eq!(again.get("HomeRealmUri"), parsed.get("HomeRealmUri"));
        prop_assert_eq!(again.to_redacted_string(), redacted);
    }

    #[test]
    fn connection_string_errors_never_show_a_secret(
        generated in generated(),
        mutation in 0u8..4,
        at in any::<prop::sample::Index>(),
    ) {
        let mut pairs = generated.pairs.clone();
        let text = match mutation {
            // Drop a pair.
            0 => {
                pairs.remove(at.index(pairs.len()));
                join(&pairs)
            }
            // The secret unquoted, whatever it holds.
            1 => {
                for pair in &mut pairs {
                    if pair.1.contains(MARKER) {
                        pair.1.clone_from(&generated.secret);
                    }
                }
                join(&pairs)
            }
            // Cut the string anywhere.
            2 => {
                let text = join(&pairs);
                let cut = at.index(text.chars().count() + 1);
                text.chars().take(cut).collect()
            }
            // A broken URL.
            _ => {
                pairs.push(("Url".to_owned(), "http://example.com".to_owned()));
                join(&pairs)
            }
        };
        if let Err(error) = ConnectionString::parse(&text) {
            let shown = format!("{error} {error:?}");
            prop_assert!(!shown.contains(MARKER), "{text:?} -> {shown}");
        }
    }
}
