//! `GET /services/data/vXX.X/sobjects/{object}/describe`: an object's fields as the REST API
//! describes them, which clients read to build a `SELECT` of every field.
//!
//! Only what clients rely on is served: `name`, `keyPrefix`, `queryable`, and per field `name`,
//! `type` (Salesforce's lower-case type names), `nillable`, `referenceTo` and `relationshipName`.
//! Compound address fields are listed with type `address`, as Salesforce does; the Bulk API
//! refuses to select them.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::bulk::version;
use crate::data::FieldType;
use crate::oauth::session::Session;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/services/data/{version}/sobjects/{object}/describe", get(describe))
}

/// The type name describe uses for a field.
fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id => "id",
        FieldType::String => "string",
        FieldType::TextArea => "textarea",
        FieldType::Picklist => "picklist",
        FieldType::Email => "email",
        FieldType::Phone => "phone",
        FieldType::Url => "url",
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        FieldType::Double => "double",
        FieldType::Currency => "currency",
        FieldType::Percent => "percent",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
        FieldType::Reference => "reference",
    }
}

async fn describe(
    _session: Session,
    State(app): State<Arc<AppState>>,
    Path((version, object)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    version::parse(&version)?;
    let data = app.data.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(schema) = data.schema(&object) else { return Err(ApiError::not_found()) };
    let mut fields: Vec<Value> = schema
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "type": type_name(f.ty),
                "nillable": f.nullable,
                "referenceTo": f.reference_to.iter().collect::<Vec<_>>(),
                "relationshipName": f.relationship_name,
            })
        })
        .collect();
    fields.extend(schema.compound_fields.iter().map(
        |name| json!({"name": name, "type": "address", "nillable": true, "referenceTo": [], "relationshipName": null}),
    ));
    Ok(Json(json!({
        "name": schema.name,
        "keyPrefix": schema.key_prefix,
        "queryable": true,
        "fields": fields,
    })))
}
