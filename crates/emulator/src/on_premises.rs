//! The on-premises mode: Dynamics 365 (or CRM 2016) on a server of its own, with its
//! organization in the URL path (`{base}/Contoso/api/data/v9.0/`), the Web API versions of
//! its release, and AD FS as its identity provider (`{base}/adfs/…`) instead of Entra ID.
//!
//! [`OnPremises`] is what a test or the `d365 emulator --on-premises` command chooses; the
//! rules that follow from it (which paths are the organization's, which Web API versions
//! answer, the AD FS issuer) are here so the identity and Dataverse halves agree.

/// An on-premises deployment for the emulator to play: the organization's name (its path
/// segment), the server's version and the Active Directory domain its users sign in with.
///
/// ```
/// use d365_emulator::OnPremises;
///
/// let crm_2016 = OnPremises::new("Contoso").server_version("8.2.2.112");
/// assert_eq!(crm_2016.web_api_versions(), ["v8.0", "v8.1", "v8.2"]);
/// assert_eq!(OnPremises::new("Contoso").web_api_versions(), ["v9.0"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnPremises {
    organization: String,
    server_version: String,
    domain: String,
    windows_sign_in: bool,
}

/// The server version when none is chosen: Dynamics 365 Customer Engagement 9.0.
pub const DEFAULT_SERVER_VERSION: &str = "9.0.2.3034";

impl OnPremises {
    /// An organization named `organization` (`Contoso` serves `{base}/Contoso/…`) on a
    /// Dynamics 365 9.0 server of the `CONTOSO` domain.
    pub fn new(organization: impl Into<String>) -> Self {
        Self {
            organization: organization.into(),
            server_version: DEFAULT_SERVER_VERSION.to_owned(),
            domain: "CONTOSO".to_owned(),
            windows_sign_in: true,
        }
    }

    /// Whether the Web API also takes Windows sign-in (NTLM, under `Negotiate` or `NTLM`)
    /// beside AD FS's tokens, and says so in its `401` (default: yes, as a server with both
    /// IIS integrated authentication and claims does).
    pub fn windows_sign_in(mut self, enabled: bool) -> Self {
        self.windows_sign_in = enabled;
        self
    }

    /// Whether Windows sign-in is on.
    pub fn takes_windows_sign_in(&self) -> bool {
        self.windows_sign_in
    }

    /// The server's version as `RetrieveVersion()` reports it: `8.2.2.112` plays CRM 2016 /
    /// Dynamics 365 8.2 (Web API v8.0–v8.2), `9.0.2.3034` Dynamics 365 9.0 (v9.0),
    /// `9.1.0.14134` 9.1 (v9.0–v9.1).
    pub fn server_version(mut self, version: impl Into<String>) -> Self {
        self.server_version = version.into();
        self
    }

    /// The NetBIOS name of the Active Directory domain (`CONTOSO`): users sign in as
    /// `CONTOSO\alice` or with their UPN.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// The organization's name, its path segment.
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// The version `RetrieveVersion()` answers.
    pub fn version(&self) -> &str {
        &self.server_version
    }

    /// The Active Directory domain's NetBIOS name.
    pub fn domain_name(&self) -> &str {
        &self.domain
    }

    /// The Web API versions this server answers at, oldest first: every minor version of
    /// its major one up to its own (9.x servers start at v9.0).
    pub fn web_api_versions(&self) -> Vec<String> {
        let Some((major, minor)) = self.major_minor() else {
            return Vec::new();
        };
        (0..=minor.min(2))
            .map(|minor| format!("v{major}.{minor}"))
            .collect()
    }

    /// `(major, minor)` of the server version, when it is one.
    fn major_minor(&self) -> Option<(u32, u32)> {
        let mut parts = self.server_version.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// Checks the settings before the emulator starts.
    pub(crate) fn check(&self) -> Result<(), String> {
        let organization_ok = !self.organization.is_empty()
            && self.organization.len() <= 64
            && self
                .organization
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !organization_ok {
            return Err(format!(
                "the on-premises organization name `{}` must be 1 to 64 letters, digits, '-' or '_'",
                self.organization
            ));
        }
        if self.organization.eq_ignore_ascii_case("adfs")
            || self.organization.eq_ignore_ascii_case("api")
            || self.organization.starts_with('_')
        {
            return Err(format!(
                "the on-premises organization name `{}` is one of the emulator's own paths",
                self.organization
            ));
        }
        match self.major_minor() {
            Some((8 | 9, _)) => {}
            _ => {
                return Err(format!(
                    "the on-premises server version `{}` is not an 8.x or 9.x version such as 8.2.2.112 or 9.0.2.3034",
                    self.server_version
                ));
            }
        }
        if self.domain.is_empty()
            || !self
                .domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "the domain `{}` must be a NetBIOS name such as CONTOSO",
                self.domain
            ));
        }
        Ok(())
    }

    /// The Web API version a request path starts with (`Contoso/api/data/v9.0/...` →
    /// `("v9.0", "...")`), when the path is this organization's (its name in any case).
    pub(crate) fn split_path<'p>(&self, path: &'p str) -> Option<(&'p str, &'p str)> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (organization, rest) = path.split_once('/')?;
        if !organization.eq_ignore_ascii_case(&self.organization) {
            return None;
        }
        let rest = rest.strip_prefix("api/data/")?;
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        Some((version, rest))
    }

    /// The issuer of AD FS access tokens, `http://{host}/adfs/services/trust` (http even
    /// when AD FS is served over https, as AD FS writes it).
    pub(crate) fn access_token_issuer(base_url: &str) -> String {
        let host = base_url
            .split_once("://")
            .map_or(base_url, |(_, host)| host);
        format!("http://{host}/adfs/services/trust")
    }
}

#[cfg(test)]
mod tests {
    use super::OnPremises;

    #[test]
    fn versions_follow_the_release() {
        let versions = |version: &str| {
            OnPremises::new("Contoso")
                .server_version(version)
                .web_api_versions()
        };
        assert_eq!(versions("8.0.1.79"), ["v8.0"]);
        assert_eq!(versions("8.2.2.112"), ["v8.0", "v8.1", "v8.2"]);
        assert_eq!(versions("9.0.2.3034"), ["v9.0"]);
        assert_eq!(versions("9.1.0.14134"), ["v9.0", "v9.1"]);
        assert!(versions("garbage").is_empty());
    }

    #[test]
    fn settings_are_checked() {
        assert!(OnPremises::new("Contoso").check().is_ok());
        assert!(OnPremises::new("").check().is_err());
        assert!(OnPremises::new("a/b").check().is_err());
        assert!(OnPremises::new("adfs").check().is_err());
        assert!(
            OnPremises::new("Contoso")
                .server_version("10.0")
                .check()
                .is_err()
        );
        assert!(
            OnPremises::new("Contoso")
                .domain("CON TOSO")
                .check()
                .is_err()
        );
    }

    #[test]
    fn paths_are_the_organizations_in_any_case() {
        let org = OnPremises::new("Contoso");
        assert_eq!(
            org.split_path("/contoso/api/data/v9.0/accounts"),
            Some(("v9.0", "accounts"))
        );
        assert_eq!(org.split_path("/Contoso/api/data/v9.0"), Some(("v9.0", "")));
        assert_eq!(org.split_path("/Fabrikam/api/data/v9.0/"), None);
        assert_eq!(org.split_path("/api/data/v9.2/"), None);
        assert_eq!(
            OnPremises::access_token_issuer("https://127.0.0.1:4443"),
            "http://127.0.0.1:4443/adfs/services/trust"
        );
    }
}
