//! Contact: a person at an account (most of them; some are private), with a name from pools that
//! include apostrophes, quotes and non-Latin scripts.

use super::words::{FIRST_NAMES, LAST_NAMES, PLACES, TITLES, email_part};
use super::{FieldSpec, ObjectKind, Rec, account, chance, common, pick};
use crate::data::schema::FieldType;
use crate::data::value::Value;
use chrono::NaiveDate;

const TAG_FIRST: u64 = 200;
const TAG_LAST: u64 = 201;
const TAG_EMAIL: u64 = 202;
const TAG_PHONE: u64 = 203;
const TAG_TITLE: u64 = 204;
const TAG_ACCOUNT: u64 = 205;
const TAG_BIRTHDATE: u64 = 206;
const TAG_OPT_OUT: u64 = 207;
const TAG_PLACE: u64 = 208;
const TAG_DESCRIPTION: u64 = 209;

pub(super) static FIELDS: &[FieldSpec] = &[
    common::ID,
    FieldSpec::reference("AccountId", true, ObjectKind::Account, "Account", account_id),
    FieldSpec::value("FirstName", FieldType::String, true, first_name),
    FieldSpec::value("LastName", FieldType::String, false, last_name),
    FieldSpec::value("Name", FieldType::String, false, name),
    FieldSpec::value("Email", FieldType::Email, true, email),
    FieldSpec::value("Phone", FieldType::Phone, true, phone),
    FieldSpec::value("Title", FieldType::String, true, title),
    FieldSpec::value("Birthdate", FieldType::Date, true, birthdate),
    FieldSpec::value("HasOptedOutOfEmail", FieldType::Boolean, false, opted_out),
    FieldSpec::value("MailingCity", FieldType::String, true, mailing_city),
    FieldSpec::value("MailingCountry", FieldType::String, true, mailing_country),
    FieldSpec::value("Description", FieldType::TextArea, true, description),
    common::OWNER_ID,
    common::IS_DELETED,
    common::CREATED_DATE,
    common::CREATED_BY_ID,
    common::LAST_MODIFIED_DATE,
    common::LAST_MODIFIED_BY_ID,
    common::SYSTEM_MODSTAMP,
];

/// One contact in twenty is private (no account).
fn account_id(rec: &Rec<'_>) -> Option<u32> {
    common::parent(rec, ObjectKind::Account, TAG_ACCOUNT, 5)
}

fn first(rec: &Rec<'_>) -> Option<&'static str> {
    let h = rec.fixed(TAG_FIRST);
    if chance(h, 5) { None } else { Some(pick(h, FIRST_NAMES)) }
}

fn last(rec: &Rec<'_>) -> &'static str {
    pick(rec.fixed(TAG_LAST), LAST_NAMES)
}

fn first_name(rec: &Rec<'_>) -> Value {
    first(rec).map_or(Value::Null, |f| Value::Text(f.to_owned()))
}

fn last_name(rec: &Rec<'_>) -> Value {
    Value::Text(last(rec).to_owned())
}

fn name(rec: &Rec<'_>) -> Value {
    Value::Text(match first(rec) {
        Some(first) => format!("{first} {}", last(rec)),
        None => last(rec).to_owned(),
    })
}

/// Email changes with edits, like people's jobs; the index keeps addresses unique.
fn email(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_EMAIL);
    if chance(h, 10) {
        return Value::Null;
    }
    let local = format!("{}.{}", email_part(first(rec).unwrap_or("x")), email_part(last(rec)));
    let domain = pick(h, &["example.com", "example.org", "mail.example.net"]);
    Value::Text(format!("{local}{}@{domain}", rec.st.idx))
}

fn phone(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_PHONE);
    if chance(h, 15) { Value::Null } else { Value::Text(account::phone_number(h)) }
}

fn title(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_TITLE);
    if chance(h, 20) { Value::Null } else { Value::Text(pick(h, TITLES).to_owned()) }
}

fn birthdate(rec: &Rec<'_>) -> Value {
    let h = rec.fixed(TAG_BIRTHDATE);
    if chance(h, 30) {
        return Value::Null;
    }
    // Between 1950-01-01 and about 2005.
    NaiveDate::from_ymd_opt(1950, 1, 1)
        .and_then(|base| base.checked_add_days(chrono::Days::new(h % (55 * 365))))
        .map_or(Value::Null, Value::Date)
}

fn opted_out(rec: &Rec<'_>) -> Value {
    Value::Bool(chance(rec.varying(TAG_OPT_OUT), 15))
}

fn place(rec: &Rec<'_>) -> Option<(&'static str, &'static str)> {
    let h = rec.fixed(TAG_PLACE);
    if chance(h, 25) { None } else { Some(pick(h, PLACES)) }
}

fn mailing_city(rec: &Rec<'_>) -> Value {
    place(rec).map_or(Value::Null, |(city, _)| Value::Text(city.to_owned()))
}

fn mailing_country(rec: &Rec<'_>) -> Value {
    place(rec).map_or(Value::Null, |(_, country)| Value::Text(country.to_owned()))
}

fn description(rec: &Rec<'_>) -> Value {
    let h = rec.varying(TAG_DESCRIPTION);
    if chance(h, 70) {
        return Value::Null;
    }
    Value::Text("Prefers email.\nBest reached \"after 10am\", Mon–Thu.".to_owned())
}
