//! Property tests for the OData filter literals: escaping round-trips, and query strings
//! percent-decode to the filter text.

use d365_webapi::{Filter, Literal, Query};
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn string_literals_round_trip(s in any::<String>()) {
        let odata = Literal::String(s.clone()).to_odata();
        let inner = odata
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .expect("quoted");
        prop_assert_eq!(inner.replace("''", "'"), s);
    }

    #[test]
    fn filter_query_strings_decode_to_the_filter_text(s in any::<String>()) {
        let filter = Filter::eq("name", s.as_str());
        let expected = format!("name eq {}", Literal::String(s.clone()).to_odata());
        let query = Query::new("accounts").filter(filter).to_query_string();
        let query = query.strip_prefix('?').unwrap_or(&query);
        let filter_part = query
            .split('&')
            .find(|part| part.starts_with("$filter=") || part.starts_with("%24filter="))
            .expect("a $filter parameter");
        let (_, raw_value) = filter_part.split_once('=').expect("name=value");
        prop_assert!(!raw_value.contains('+'), "{raw_value:?}");
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(filter_part.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        prop_assert_eq!(decoded.len(), 1);
        prop_assert_eq!(&decoded[0].1, &expected);
    }
}
