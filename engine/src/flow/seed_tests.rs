//! The seed's three flows load unchanged, and their scripts do what the seed document says.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::model::TaskKind;
use super::script::{Output, ScriptResult};
use super::{Flow, LoadContext, load_dir};
use crate::credentials::CredentialsRoot;
use crate::event::Event;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seed_flows() -> Vec<Flow> {
    let creds = CredentialsRoot::default();
    let ctx = LoadContext { resources_dir: &repo().join("resources"), credentials: &creds, env: &|_| None };
    let loaded = load_dir(&repo().join("workflows/seed"), &ctx).unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.flows
}

fn run_script(flow: &Flow, task: &str, event: &Event) -> ScriptResult {
    let TaskKind::Script { script, .. } = &flow.task(task).unwrap().kind else { panic!("{task} is not a script") };
    script.run(&flow.name, task, event).unwrap()
}

fn flow<'a>(flows: &'a [Flow], name: &str) -> &'a Flow {
    flows.iter().find(|f| f.name == name).unwrap()
}

#[test]
fn the_seed_loads_with_chains_and_a_fan_out() {
    let flows = seed_flows();
    assert_eq!(flows.len(), 3);
    let writer = flow(&flows, "salesforce_bulkapi_writer_account");
    assert!(!writer.require_leader_election);
    assert_eq!(writer.task("cast_schema").unwrap().depends_on, ["start_subscription"]);
    let children: Vec<_> = writer.children("cast_schema").map(|t| t.name.as_str()).collect();
    assert_eq!(children, ["write_to_object_store", "write_to_data_warehouse"]);
    let listener = flow(&flows, "salesforce_bulkapi_job_listener");
    assert!(listener.require_leader_election);
    assert_eq!(listener.tasks.len(), 7);
    assert_eq!(listener.task("publish_to_nats").unwrap().depends_on, ["get_job_results"]);
}

#[test]
fn prepare_query_time_subtracts_an_hour_from_the_last_run() {
    let flows = seed_flows();
    let query = flow(&flows, "salesforce_bulkapi_query_account");
    let ev = Event::json("t", json!({"system_info": {"last_run_time": 1_764_061_200}}));
    let r = run_script(query, "prepare_query_time", &ev);
    assert_eq!(
        r.outputs,
        vec![Output::Data(json!({"last_run_unix": 1_764_057_600, "last_run_iso": "2025-11-25T08:00:00Z"}))]
    );
}

#[test]
fn prepare_query_time_goes_back_a_day_on_the_first_run() {
    let flows = seed_flows();
    let query = flow(&flows, "salesforce_bulkapi_query_account");
    let ev = Event::json("t", json!({"system_info": {}}));
    let r = run_script(query, "prepare_query_time", &ev);
    let [Output::Data(data)] = r.outputs.as_slice() else { panic!("{r:?}") };
    let unix = data["last_run_unix"].as_i64().unwrap();
    let expected = chrono::Utc::now().timestamp() - 86_400;
    assert!((unix - expected).abs() < 5, "{unix} vs {expected}");
    let iso = data["last_run_iso"].as_str().unwrap();
    assert_eq!(super::script::parse_timestamp(iso).unwrap(), unix);
}

fn job_event(ty: &str, result_type: &str) -> Event {
    Event::json(
        "e",
        json!({
            "Type": ty, "ResultType": result_type, "JobIdentifier": "750xx0000000001AAA",
            "ResultUrl": "/services/data/v63.0/jobs/query/750xx0000000001AAA/results", "JobState": "JobComplete"
        }),
    )
}

#[test]
fn filter_available_results_keeps_only_final_results() {
    let flows = seed_flows();
    let listener = flow(&flows, "salesforce_bulkapi_job_listener");
    let r = run_script(listener, "filter_available_results", &job_event("RESULT", "FINAL"));
    assert_eq!(
        r.outputs,
        vec![Output::Data(json!({
            "id": "750xx0000000001AAA", "result_type": "FINAL",
            "result_url": "/services/data/v63.0/jobs/query/750xx0000000001AAA/results",
            "state": "JobComplete", "event_type": "RESULT"
        }))]
    );
    for (ty, rt) in [("RESULT", "PARTIAL"), ("JOB_STATE", "FINAL"), ("JOB_STATE", "")] {
        assert!(run_script(listener, "filter_available_results", &job_event(ty, rt)).outputs.is_empty(), "{ty}/{rt}");
    }
}

#[test]
fn add_metadata_to_meta_and_filter_final_results() {
    let flows = seed_flows();
    let listener = flow(&flows, "salesforce_bulkapi_job_listener");
    let job_info = json!({"id": "750xx0000000001AAA", "object": "Account", "state": "JobComplete"});
    let mut ev = Event::json("e", job_info.clone());
    ev.meta.insert("run_id".into(), json!("r"));
    let r = run_script(listener, "add_metadata_to_meta", &ev);
    assert_eq!(r.outputs, vec![Output::Unchanged]);
    let expected: Value =
        json!({"run_id": "r", "object_name": "account", "job_id": "750xx0000000001AAA", "job_state": "JobComplete"});
    assert_eq!(Value::Object(r.meta.clone()), expected);

    ev.meta = r.meta;
    assert_eq!(run_script(listener, "filter_final_results", &ev).outputs, vec![Output::Unchanged]);
    ev.meta.insert("job_state".into(), json!("Failed"));
    assert!(run_script(listener, "filter_final_results", &ev).outputs.is_empty());
}
