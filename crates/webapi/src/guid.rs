//! [`Guid`]: Dataverse's record ids, parsed and printed in the usual
//! `00000000-0000-0000-0000-000000000000` form (braces and upper case accepted).

use std::fmt;
use std::str::FromStr;

/// A GUID, such as a record id.
///
/// # Examples
///
/// ```
/// use d365_webapi::Guid;
///
/// let id: Guid = "{6C1D2E3F-0000-0000-0000-00000000A001}".parse()?;
/// assert_eq!(id.to_string(), "6c1d2e3f-0000-0000-0000-00000000a001");
/// # Ok::<(), d365_webapi::GuidError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(uuid::Uuid);

impl Guid {
    /// A new random (version 4) GUID, for ids chosen by the client.
    #[must_use]
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The name-based (version 5, SHA-1) GUID of `name` in `namespace` (RFC 9562): the same
    /// inputs always give the same GUID, as an import gives each row an id it can send
    /// again without creating the row twice.
    #[must_use]
    pub fn from_name(namespace: Guid, name: &[u8]) -> Self {
        use sha1::Digest as _;
        let mut hasher = sha1::Sha1::new();
        hasher.update(namespace.0.as_bytes());
        hasher.update(name);
        let digest = hasher.finalize();
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_sha1_bytes(bytes).into_uuid())
    }

    /// The all-zero GUID.
    #[must_use]
    pub fn nil() -> Self {
        Self(uuid::Uuid::nil())
    }
}

/// Text that is not a GUID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GUID (expected 00000000-0000-0000-0000-000000000000)")]
pub struct GuidError(String);

impl FromStr for Guid {
    type Err = GuidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim().trim_start_matches('{').trim_end_matches('}');
        // uuid accepts forms Dataverse never writes (urn:, no hyphens); insist on the hyphenated form.
        if trimmed.len() != 36 {
            return Err(GuidError(text.to_owned()));
        }
        uuid::Uuid::parse_str(trimmed)
            .map(Self)
            .map_err(|_| GuidError(text.to_owned()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_parse_in_dataverse_forms_only() {
        for good in [
            "6c1d2e3f-0000-0000-0000-00000000a001",
            "{6C1D2E3F-0000-0000-0000-00000000A001}",
            " 6c1d2e3f-0000-0000-0000-00000000a001 ",
        ] {
            assert_eq!(
                good.parse::<Guid>().unwrap().to_string(),
                "6c1d2e3f-0000-0000-0000-00000000a001"
            );
        }
        for bad in [
            "",
            "6c1d2e3f00000000000000000000a001",
            "urn:uuid:6c1d2e3f-0000-0000-0000-00000000a001",
            "not-a-guid",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Guid::nil()).unwrap();
        assert_eq!(serde_json::from_str::<Guid>(&json).unwrap(), Guid::nil());
    }
}
