//! An object's describe: the fields an export selects when it is not told which.

use serde_json::Value;

use super::SalesforceClient;
use super::bulk::json_body;
use super::error::SalesforceError;

/// Field types a Bulk API query cannot select: compound fields (their components are listed
/// as fields of their own) and binary content.
const NOT_SELECTABLE: &[&str] = &["address", "location", "base64"];

/// The names of the fields of `object` a Bulk API 2.0 query can select, in describe order.
pub async fn bulk_fields(client: &SalesforceClient, object: &str) -> Result<Vec<String>, SalesforceError> {
    let version = client.api_version().to_string();
    let what = format!("describe {object}");
    let r = client
        .send(&what, |http, s| {
            http.get(format!("{}/sobjects/{object}/describe", SalesforceClient::data_url(s, &version)))
        })
        .await?;
    let body = json_body(client, &what, r).await?;
    Ok(selectable(&body))
}

fn selectable(describe: &Value) -> Vec<String> {
    let Some(fields) = describe.get("fields").and_then(Value::as_array) else { return Vec::new() };
    fields
        .iter()
        .filter(|f| !f.get("type").and_then(Value::as_str).is_some_and(|t| NOT_SELECTABLE.contains(&t)))
        .filter_map(|f| f.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn compound_and_binary_fields_are_left_out() {
        let describe = json!({"name": "Account", "fields": [
            {"name": "Id", "type": "id"},
            {"name": "BillingAddress", "type": "address"},
            {"name": "BillingCity", "type": "string"},
            {"name": "Logo", "type": "base64"},
        ]});
        assert_eq!(super::selectable(&describe), ["Id", "BillingCity"]);
    }
}
