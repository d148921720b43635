//! Which identity of the Azure resource asks for tokens: [`ManagedIdentityId`], the
//! system-assigned one or a user-assigned one by client id, object id or resource id, and
//! how each endpoint spells it.

use std::fmt;

use d365_auth_core::ConfigError;

/// Which managed identity of the Azure resource tokens are for.
///
/// An Azure resource has at most one system-assigned identity and any number of
/// user-assigned ones; with several user-assigned identities (and no system-assigned one),
/// the endpoint needs to be told which. Any of a user-assigned identity's three ids names
/// it: the client (application) id, the object (principal) id, or its Azure resource id.
///
/// # Examples
///
/// ```
/// use d365_auth_managed_identity::ManagedIdentityId;
///
/// let id = ManagedIdentityId::ClientId("00000000-0000-0000-0000-0000000000c1".into());
/// assert_eq!(id.to_string(), "client_id=00000000-0000-0000-0000-0000000000c1");
/// assert_eq!(ManagedIdentityId::default(), ManagedIdentityId::System);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The resource's system-assigned identity (the default).
    #[default]
    System,
    /// A user-assigned identity by its client (application) id, a GUID: `client_id`.
    ClientId(String),
    /// A user-assigned identity by its object (principal) id, a GUID: `object_id` at IMDS,
    /// `principal_id` at App Service.
    ObjectId(String),
    /// A user-assigned identity by its Azure resource id,
    /// `/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`:
    /// `msi_res_id` at IMDS, `mi_res_id` at App Service.
    ResourceId(String),
}

/// Which endpoint a query parameter is for: they spell the ids differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spelling {
    Imds,
    AppService,
}

impl ManagedIdentityId {
    /// Whether this is the system-assigned identity.
    #[must_use]
    pub fn is_system(&self) -> bool {
        matches!(self, Self::System)
    }

    /// The query parameter naming the identity at an endpoint, none for the
    /// system-assigned one.
    pub(crate) fn parameter(&self, spelling: Spelling) -> Option<(&'static str, &str)> {
        let name = match (self, spelling) {
            (Self::System, _) => return None,
            (Self::ClientId(_), _) => "client_id",
            (Self::ObjectId(_), Spelling::Imds) => "object_id",
            (Self::ObjectId(_), Spelling::AppService) => "principal_id",
            (Self::ResourceId(_), Spelling::Imds) => "msi_res_id",
            (Self::ResourceId(_), Spelling::AppService) => "mi_res_id",
        };
        self.value().map(|value| (name, value))
    }

    /// The id, none for the system-assigned identity.
    fn value(&self) -> Option<&str> {
        match self {
            Self::System => None,
            Self::ClientId(id) | Self::ObjectId(id) | Self::ResourceId(id) => Some(id.as_str()),
        }
    }

    /// This identity with its id trimmed.
    pub(crate) fn trimmed(self) -> Self {
        match self {
            Self::System => Self::System,
            Self::ClientId(id) => Self::ClientId(id.trim().to_owned()),
            Self::ObjectId(id) => Self::ObjectId(id.trim().to_owned()),
            Self::ResourceId(id) => Self::ResourceId(id.trim().to_owned()),
        }
    }

    /// Checks the id's form, naming `setting` in the error: a client or object id is a
    /// GUID, a resource id the Azure resource id of a user-assigned identity.
    pub(crate) fn check(&self, setting: &'static str) -> Result<(), ConfigError> {
        match self {
            Self::System => Ok(()),
            Self::ClientId(id) => check_guid(id, setting, "the identity's Client ID"),
            Self::ObjectId(id) => check_guid(id, setting, "the identity's Object (principal) ID"),
            Self::ResourceId(id) => check_resource_id(id, setting),
        }
    }

    /// In words, for errors: "the system-assigned identity", "the user-assigned identity
    /// with client id …".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::System => "the system-assigned identity".to_owned(),
            Self::ClientId(id) => format!("the user-assigned identity with client id {id}"),
            Self::ObjectId(id) => format!("the user-assigned identity with object id {id}"),
            Self::ResourceId(id) => format!("the user-assigned identity {id}"),
        }
    }
}

/// `system`, or the id as `client_id=…`, `object_id=…`, `resource_id=…`: what a cache key
/// and a log line carry.
impl fmt::Display for ManagedIdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::ClientId(id) => write!(f, "client_id={id}"),
            Self::ObjectId(id) => write!(f, "object_id={id}"),
            Self::ResourceId(id) => write!(f, "resource_id={id}"),
        }
    }
}

fn check_guid(id: &str, setting: &'static str, what: &str) -> Result<(), ConfigError> {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let is_guid = groups.len() == lengths.len()
        && groups.iter().zip(lengths).all(|(group, length)| {
            group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit())
        });
    if is_guid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting,
            problem: if id.is_empty() {
                "the id is empty".to_owned()
            } else {
                format!("`{}` is not a GUID", shown(id))
            },
            fix: format!(
                "give {what}, a GUID such as 00000000-0000-0000-0000-000000000000 (Azure portal > Managed Identities > the identity > Overview)"
            ),
        })
    }
}

fn check_resource_id(id: &str, setting: &'static str) -> Result<(), ConfigError> {
    let lower = id.to_ascii_lowercase();
    let is_identity = lower.starts_with("/subscriptions/")
        && lower.contains("/providers/microsoft.managedidentity/userassignedidentities/")
        && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    if is_identity {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting,
            problem: if id.is_empty() {
                "the id is empty".to_owned()
            } else {
                format!(
                    "`{}` is not the Azure resource id of a user-assigned identity",
                    shown(id)
                )
            },
            fix: "give /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name} (Azure portal > the identity > Properties > Id)".to_owned(),
        })
    }
}

/// An id as an error shows it: ids are not secrets, but text that is plainly something
/// else (a connection string pasted into the wrong place) is not echoed.
fn shown(id: &str) -> String {
    if id.contains(';') || id.contains('=') || id.chars().count() > 200 {
        "(not shown)".to_owned()
    } else {
        id.to_owned()
    }
}
