//! [`AuthType`]: the `AuthType` values of ServiceClient and CrmServiceClient, which the grants
//! of a build may take.

use std::fmt;

/// The `AuthType` of a connection string.
///
/// Parsed case-insensitively (ServiceClient is case-sensitive; d365 logs a warning when the
/// case differs from ServiceClient's spelling, so a string that works here but not there is
/// noticed). The numeric values of ServiceClient's enum (`7` for `ClientSecret`, ...) are
/// accepted too, as .NET's `Enum.TryParse` accepts them.
///
/// # Examples
///
/// ```
/// use d365_connect::AuthType;
///
/// assert_eq!("clientsecret".parse::<AuthType>(), Ok(AuthType::ClientSecret));
/// assert_eq!(AuthType::OAuth.to_string(), "OAuth");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthType {
    /// `AD`: Windows integrated authentication to on-premises Dynamics; not OAuth.
    Ad,
    /// `IFD`: claims-based internet-facing deployment through AD FS (CrmServiceClient).
    /// AD FS issues OAuth tokens for the same servers: use `OAuth` against AD FS.
    Ifd,
    /// `Claims`: claims-based authentication (CrmServiceClient).
    Claims,
    /// `Office365`: the deprecated WS-Trust sign-in (CrmServiceClient).
    Office365,
    /// `OAuth`: a user; with `Username` and `Password`, the password grant (ROPC).
    OAuth,
    /// `Certificate`: client credentials with a certificate assertion.
    Certificate,
    /// `ClientSecret`: client credentials with a client secret.
    ClientSecret,
    /// `ExternalTokenManagement`: your code supplies the tokens through a callback.
    ExternalTokenManagement,
}

/// (value, ServiceClient's spelling, enum number)
const NAMES: &[(AuthType, &str, &str)] = &[
    (AuthType::Ad, "AD", "0"),
    (AuthType::Ifd, "IFD", "2"),
    (AuthType::Claims, "Claims", "3"),
    (AuthType::Office365, "Office365", "4"),
    (AuthType::OAuth, "OAuth", "5"),
    (AuthType::Certificate, "Certificate", "6"),
    (AuthType::ClientSecret, "ClientSecret", "7"),
    (
        AuthType::ExternalTokenManagement,
        "ExternalTokenManagement",
        "99",
    ),
];

impl AuthType {
    /// ServiceClient's spelling of the value (`ClientSecret`, `OAuth`, `AD`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(value, _, _)| *value == self)
            .map_or("", |(_, name, _)| name)
    }

    /// Parses a value, and says whether it was written exactly as ServiceClient requires.
    pub(crate) fn parse_with_case(text: &str) -> Option<(Self, bool)> {
        let text = text.trim();
        NAMES.iter().find_map(|(value, name, number)| {
            if *name == text {
                Some((*value, true))
            } else if name.eq_ignore_ascii_case(text) || *number == text {
                Some((*value, *number == text))
            } else {
                None
            }
        })
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of `AuthType::from_str`: the text names no authentication type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an AuthType; the values are AD, IFD, Claims, Office365, OAuth, Certificate, ClientSecret and ExternalTokenManagement"
)]
pub struct AuthTypeParseError(pub String);

impl std::str::FromStr for AuthType {
    type Err = AuthTypeParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_with_case(text)
            .map(|(value, _)| value)
            .ok_or_else(|| AuthTypeParseError(text.trim().to_owned()))
    }
}
