//! Account: names and descriptions carry quotes, commas, newlines and non-ASCII text; revenue,
//! headcount, phone, description and owner change when the record is modified.

use super::words::{
    ACCOUNT_TYPES, COMPANY_MIDDLES, COMPANY_STEMS, COMPANY_SUFFIXES, FIRST_NAMES, INDUSTRIES, LAST_NAMES, PLACES,
    STREETS,
};
use super::{FieldSpec, GenContext, ObjectKind, Rec, chance, common, pick, rng};
use crate::data::schema::FieldType;
use crate::data::value::Value;

const TAG_NAME: u64 = 100;
const TAG_TYPE: u64 = 101;
const TAG_INDUSTRY: u64 = 102;
const TAG_REVENUE: u64 = 103;
const TAG_EMPLOYEES: u64 = 104;
const TAG_PHONE: u64 = 105;
const TAG_WEBSITE: u64 = 106;
const TAG_PLACE: u64 = 107;
const TAG_STREET: u64 = 108;
const TAG_DESCRIPTION: u64 = 109;

pub(super) static FIELDS: &[FieldSpec] = &[
    common::ID,
    FieldSpec::value("Name", FieldType::String, false, name),
    FieldSpec::value("Type", FieldType::Picklist, true, account_type),
    FieldSpec::value("Industry", FieldType::Picklist, true, industry),
    FieldSpec::value("AnnualRevenue", FieldType::Currency, true, annual_revenue),
    FieldSpec::value("NumberOfEmployees", FieldType::Int, true, employees),
    FieldSpec::value("Phone", FieldType::Phone, true, phone),
    FieldSpec::value("Website", FieldType::Url, true, website),
    FieldSpec::value("BillingStreet", FieldType::String, true, billing_street),
    FieldSpec::value("BillingCity", FieldType::String, true, billing_city),
    FieldSpec::value("BillingPostalCode", FieldType::String, true, billing_postal_code),
    FieldSpec::value("BillingCountry", FieldType::String, true, billing_country),
    FieldSpec::value("Description", FieldType::TextArea, true, description),
    common::OWNER_ID,
    common::IS_DELETED,
    common::CREATED_DATE,
    common::CREATED_BY_ID,
    common::LAST_MODIFIED_DATE,
    common::LAST_MODIFIED_BY_ID,
    common::SYSTEM_MODSTAMP,
];

/// Also the stem of opportunity names, hence a function of the index alone.
pub(super) fn account_name(ctx: &GenContext, idx: u32) -> String {
    let h = rng::hash(&[ctx.seed, ObjectKind::Account as u64, u64::from(idx), TAG_NAME]);
    let stem = pick(h >> 8, COMPANY_STEMS);
    let middle = pick(h >> 16, COMPANY_MIDDLES);
    let suffix = pick(h >> 24, COMPANY_SUFFIXES);
    match h % 50 {
        0..=1 => format!("\"{stem}\" {middle} {suffix}"),
        2..=3 => {
            format!("{}, {} & {}", pick(h >> 32, LAST_NAMES), pick(h >> 40, LAST_NAMES), pick(h >> 48, LAST_NAMES))
        }
        4 => format!("{stem} {middle}\n{suffix}"),
        _ => format!("{stem} {middle} {suffix}"),
    }
}

fn name(rec: &Rec<'_>) -> Value {
    Value::Text(account_name(rec.ctx, rec.st.idx))
}

fn account_type(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_TYPE);
    if chance(h, 10) { Value::Null } else { Value::Text(pick(h, ACCOUNT_TYPES).to_owned()) }
}

fn industry(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_INDUSTRY);
    if chance(h, 15) { Value::Null } else { Value::Text(pick(h, INDUSTRIES).to_owned()) }
}

/// Whole currency units: AnnualRevenue is a currency(18,0) field in Salesforce.
fn annual_revenue(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_REVENUE);
    if chance(h, 20) {
        return Value::Null;
    }
    let magnitude = 10_u64.pow(4 + (h % 6) as u32);
    Value::Number(((h >> 8) % 1000 * magnitude) as f64)
}

fn employees(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_EMPLOYEES);
    if chance(h, 15) { Value::Null } else { Value::Int((h % 250_000) as i64 + 1) }
}

pub(super) fn phone_number(h: u64) -> String {
    match h % 3 {
        0 => format!("({:03}) {:03}-{:04}", 200 + h % 800, (h >> 10) % 1000, (h >> 20) % 10_000),
        1 => format!("+49 30 {:07}", (h >> 10) % 10_000_000),
        _ => format!("+81-3-{:04}-{:04}", (h >> 10) % 10_000, (h >> 24) % 10_000),
    }
}

fn phone(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_PHONE);
    if chance(h, 10) { Value::Null } else { Value::Text(phone_number(h)) }
}

fn website(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_WEBSITE);
    if chance(h, 20) {
        return Value::Null;
    }
    let host = super::words::email_part(&account_name(rec.ctx, rec.st.idx));
    let host: String = host.chars().take(20).collect();
    match h % 3 {
        0 => Value::Text(format!("www.{host}.example.com")),
        1 => Value::Text(format!("https://{host}.example.org/")),
        _ => Value::Text(format!("http://example.net/{host}?ref=sf&lang=de")),
    }
}

fn place(rec: &Rec<'_>) -> Option<(&'static str, &'static str)> {
    let h = rec.fixed(TAG_PLACE);
    if chance(h, 10) { None } else { Some(pick(h, PLACES)) }
}

/// Street addresses are multi-line in Salesforce: suite numbers go on a second line.
fn billing_street(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_STREET);
    if place(rec).is_none() {
        return Value::Null;
    }
    let street = pick(h, STREETS);
    let number = 1 + (h >> 8) % 400;
    if chance(h, 30) {
        Value::Text(format!("{number} {street}\nSuite {}", 100 + (h >> 20) % 900))
    } else {
        Value::Text(format!("{number} {street}"))
    }
}

fn billing_city(rec: &Rec<'_>) -> Value {
    place(rec).map_or(Value::Null, |(city, _)| Value::Text(city.to_owned()))
}

fn billing_postal_code(rec: &Rec<'_>) -> Value {
    match place(rec) {
        // Leading zeros must survive: a postal code is text, not a number.
        Some(_) => Value::Text(format!("{:05}", rec.fixed(TAG_STREET) % 100_000)),
        None => Value::Null,
    }
}

fn billing_country(rec: &Rec<'_>) -> Value {
    place(rec).map_or(Value::Null, |(_, country)| Value::Text(country.to_owned()))
}

fn description(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_DESCRIPTION);
    if chance(h, 40) {
        return Value::Null;
    }
    let contact = pick(h >> 8, FIRST_NAMES);
    let industry = pick(h >> 16, INDUSTRIES);
    Value::Text(match h % 4 {
        0 => format!("Key account in {industry}."),
        1 => format!("Renewal due in Q{}.\nAsk \"{contact}\" for details, not the front desk.", 1 + h % 4),
        2 => "Line one, with a comma\r\nLine two; with a semicolon\r\n\tIndented line three".to_owned(),
        _ => format!("Met {contact} at Dreamforce — interested in {industry}, pricing & SLAs."),
    })
}
