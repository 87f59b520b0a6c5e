//! Turns the org's job state changes into `BulkApi2JobEvent`s on the replay log: `JOB_STATE` on
//! every change, `RESULT`/`PARTIAL` per full results page when enabled, `RESULT`/`FINAL` when a job
//! completes.

use bulkflow_pubsub_proto::ProducerEvent;

use super::avro::{self, JobEventRecord};
use super::log::ReplayLog;
use crate::events::{JobEvent, JobState};
use crate::faults::EventFault;
use crate::state::AppState;

/// Appends `event`'s records to `log`: what the org's publisher does for every job event.
pub fn publish_event(app: &AppState, log: &ReplayLog, event: &JobEvent, partial_results: bool) {
    for record in records(app, event, partial_results) {
        publish(app, log, &record);
    }
}

fn records(app: &AppState, event: &JobEvent, partial_results: bool) -> Vec<JobEventRecord> {
    let mut out = vec![JobEventRecord::job_state(event, crate::ids::new_uuid())];
    if event.state == JobState::JobComplete {
        let results =
            format!("{}/services/data/v{}/jobs/query/{}/results", app.base_url, event.api_version, event.job_id);
        let page = app.settings.max_page_records.max(1);
        let rows = usize::try_from(event.number_records_processed).unwrap_or(usize::MAX);
        if partial_results {
            // Every full page before the last one, each by the locator that fetches it.
            let mut offset = 0;
            while offset + page < rows {
                let url = if offset == 0 {
                    results.clone()
                } else {
                    format!("{results}?locator={}", crate::bulk::locator::encode(offset))
                };
                out.push(JobEventRecord::result(event, crate::ids::new_uuid(), "PARTIAL", url));
                offset += page;
            }
        }
        out.push(JobEventRecord::result(event, crate::ids::new_uuid(), "FINAL", results));
    }
    out
}

/// What the `pubsub_bad_payloads` fault leaves of a payload: fewer bytes than the schema's fields
/// need, so no reading of them can succeed.
const BAD_PAYLOAD_BYTES: usize = 4;

/// The schema id the `pubsub_unknown_schemas` fault names: well formed, known to no one.
const UNKNOWN_SCHEMA_ID: &str = "UnknownSchemaId0000000";

fn publish(app: &AppState, log: &ReplayLog, record: &JobEventRecord) {
    match record.encode() {
        Ok(mut payload) => {
            let mut schema_id = avro::schema_id();
            match app.faults.take_event_fault() {
                Some(EventFault::BadPayload) => {
                    app.stats.fault("pubsub_bad_payloads");
                    payload.truncate(BAD_PAYLOAD_BYTES);
                }
                Some(EventFault::UnknownSchema) => {
                    app.stats.fault("pubsub_unknown_schemas");
                    schema_id = UNKNOWN_SCHEMA_ID.to_string();
                }
                None => {}
            }
            let seq =
                log.append(avro::TOPIC, ProducerEvent { id: record.uuid.clone(), schema_id, payload, headers: vec![] });
            tracing::debug!(
                job = record.job_id,
                kind = record.kind,
                state = record.job_state,
                seq,
                "BulkApi2JobEvent published"
            );
        }
        Err(e) => tracing::error!(job = record.job_id, error = %e, "cannot encode a BulkApi2JobEvent"),
    }
}
