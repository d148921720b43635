//! What the service says about itself: the service document (`GET /api/data/v9.2/`, the
//! entity sets) and `$metadata`, the CSDL (OData v4 XML) of the served tables — entity types
//! with their key, typed properties, `_x_value` lookup properties, single- and
//! collection-valued navigation properties and alternate keys — plus the WhoAmI function.

use std::fmt::Write as _;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::definitions;
use super::response::{DvResponse, Ordered};
use super::schema::{Kind, Schema, Table};

/// The service document: every entity set, by name and URL.
pub(crate) fn service_document(schema: &Schema, api_root: &str) -> DvResponse {
    let mut value: Vec<Value> = schema
        .tables
        .iter()
        .map(|t| json!({"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}))
        .collect();
    value.extend(
        definitions::SETS
            .iter()
            .map(|set| json!({"name": set, "kind": "EntitySet", "url": set})),
    );
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!("{api_root}$metadata")),
    );
    body.push("value", Value::Array(value));
    DvResponse::json(StatusCode::OK, &body)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

fn entity_type(out: &mut String, schema: &Schema, table: &Table) {
    // Every table derives from crmbaseentity, as on the service, so actions bound to
    // `Collection(mscrm.crmbaseentity)` (CreateMultiple, …) bind to each entity set.
    let _ = writeln!(
        out,
        r#"      <EntityType Name="{}" BaseType="mscrm.crmbaseentity">"#,
        table.logical_name
    );
    let _ = writeln!(
        out,
        r#"        <Key><PropertyRef Name="{}" /></Key>"#,
        table.primary_id
    );
    for column in &table.columns {
        let name = Table::property_name(column);
        let extra = match &column.kind {
            Kind::String { max_length } => format!(r#" MaxLength="{max_length}""#),
            Kind::PrimaryId => r#" Nullable="false""#.to_owned(),
            Kind::Decimal | Kind::Money => r#" Scale="Variable""#.to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            r#"        <Property Name="{name}" Type="{}"{extra} />"#,
            column.kind.edm()
        );
    }
    for column in &table.columns {
        if let Kind::Lookup(targets) = &column.kind {
            for target in targets {
                if let Some(other) = schema.by_name(&target.table) {
                    let _ = writeln!(
                        out,
                        r#"        <NavigationProperty Name="{}" Type="mscrm.{}" Nullable="false" Partner="{}"><ReferentialConstraint Property="_{}_value" ReferencedProperty="{}" /></NavigationProperty>"#,
                        target.navigation,
                        other.logical_name,
                        target.relationship,
                        column.name,
                        other.primary_id
                    );
                }
            }
        }
    }
    for nav in &table.collections {
        if let Some(other) = schema.by_name(&nav.table)
            && let Some(Kind::Lookup(targets)) = other.column(&nav.column).map(|c| &c.kind)
            && let Some(target) = targets.iter().find(|t| t.relationship == nav.name)
        {
            let _ = writeln!(
                out,
                r#"        <NavigationProperty Name="{}" Type="Collection(mscrm.{})" Partner="{}" />"#,
                nav.name, other.logical_name, target.navigation
            );
        }
    }
    if !table.keys.is_empty() {
        let _ = writeln!(
            out,
            r#"        <Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>"#
        );
        for key in &table.keys {
            let _ = write!(
                out,
                r#"          <Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key"><Collection>"#
            );
            for column in &key.columns {
                let property = table
                    .column(column)
                    .map_or_else(|| column.clone(), Table::property_name);
                let _ = write!(
                    out,
                    r#"<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="{property}" /><PropertyValue Property="Name" PropertyPath="{property}" /></Record>"#
                );
            }
            let _ = writeln!(out, "</Collection></PropertyValue></Record>");
        }
        let _ = writeln!(out, "        </Collection></Annotation>");
    }
    let _ = writeln!(out, "      </EntityType>");
}

/// The CSDL document.
pub(crate) fn csdl(schema: &Schema) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
"#,
    );
    for table in &schema.tables {
        entity_type(&mut out, schema, table);
    }
    out.push_str(
        r#"      <ComplexType Name="WhoAmIResponse">
        <Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false" />
        <Property Name="UserId" Type="Edm.Guid" Nullable="false" />
        <Property Name="OrganizationId" Type="Edm.Guid" Nullable="false" />
      </ComplexType>
      <Function Name="WhoAmI"><ReturnType Type="mscrm.WhoAmIResponse" Nullable="false" /></Function>
      <EntityType Name="crmbaseentity" Abstract="true" />
      <ComplexType Name="CreateMultipleResponse">
        <Property Name="Ids" Type="Collection(Edm.Guid)" Nullable="false" />
      </ComplexType>
      <Action Name="CreateMultiple" IsBound="true">
        <Parameter Name="entityset" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
        <Parameter Name="Targets" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
        <ReturnType Type="mscrm.CreateMultipleResponse" Nullable="false" />
      </Action>
      <Action Name="UpdateMultiple" IsBound="true">
        <Parameter Name="entityset" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
        <Parameter Name="Targets" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
      </Action>
      <Action Name="UpsertMultiple" IsBound="true">
        <Parameter Name="entityset" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
        <Parameter Name="Targets" Type="Collection(mscrm.crmbaseentity)" Nullable="false" />
      </Action>
      <ComplexType Name="BulkDeleteResponse">
        <Property Name="JobId" Type="Edm.Guid" Nullable="false" />
      </ComplexType>
      <Action Name="BulkDelete">
        <Parameter Name="QuerySet" Type="Collection(Edm.Untyped)" Nullable="false" />
        <Parameter Name="JobName" Type="Edm.String" Nullable="false" />
        <Parameter Name="SendEmailNotification" Type="Edm.Boolean" Nullable="false" />
        <Parameter Name="ToRecipients" Type="Collection(Edm.Guid)" Nullable="false" />
        <Parameter Name="CCRecipients" Type="Collection(Edm.Guid)" Nullable="false" />
        <Parameter Name="RecurrencePattern" Type="Edm.String" Nullable="false" />
        <Parameter Name="StartDateTime" Type="Edm.DateTimeOffset" Nullable="false" />
        <ReturnType Type="mscrm.BulkDeleteResponse" Nullable="false" />
      </Action>
"#,
    );
    definitions::csdl_types(&mut out);
    out.push_str("      <EntityContainer Name=\"System\">\n");
    for table in &schema.tables {
        let _ = writeln!(
            out,
            r#"        <EntitySet Name="{}" EntityType="Microsoft.Dynamics.CRM.{}">"#,
            escape(&table.entity_set),
            table.logical_name
        );
        for column in &table.columns {
            if let Kind::Lookup(targets) = &column.kind {
                for target in targets {
                    if let Some(other) = schema.by_name(&target.table) {
                        let _ = writeln!(
                            out,
                            r#"          <NavigationPropertyBinding Path="{}" Target="{}" />"#,
                            target.navigation, other.entity_set
                        );
                    }
                }
            }
        }
        let _ = writeln!(out, "        </EntitySet>");
    }
    definitions::csdl_sets(&mut out);
    out.push_str(
        r#"        <FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI" />
        <ActionImport Name="BulkDelete" Action="Microsoft.Dynamics.CRM.BulkDelete" />
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"#,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csdl_is_well_formed_and_names_every_table() {
        let schema = Schema::build(&[]).expect("schema");
        let text = csdl(&schema);
        let document = roxmltree::Document::parse(&text).expect("well-formed XML");
        let sets: Vec<&str> = document
            .descendants()
            .filter(|n| n.has_tag_name("EntitySet"))
            .filter_map(|n| n.attribute("Name"))
            .collect();
        assert_eq!(
            sets,
            [
                "organizations",
                "businessunits",
                "systemusers",
                "accounts",
                "contacts",
                "asyncoperations",
                "EntityDefinitions",
                "RelationshipDefinitions",
                "GlobalOptionSetDefinitions"
            ]
        );
        assert!(text.contains(
            r#"<NavigationProperty Name="parentcustomerid_account" Type="mscrm.account""#
        ));
        assert!(text.contains(r#"<NavigationProperty Name="contact_customer_accounts" Type="Collection(mscrm.contact)""#));
        assert!(text.contains(r#"<Property Name="_primarycontactid_value" Type="Edm.Guid" />"#));
    }
}
