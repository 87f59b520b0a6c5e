//! The BigQuery Storage Write API's `AppendRows` (service `google.cloud.bigquery.storage.v1.BigQueryWrite`)
//! as the simulator's BigQuery fake serves it: messages and the server trait generated at build
//! time from `proto/bigquery_storage_write.proto`, a subset of googleapis' with their field numbers.
//! The engine's client uses Google's own generated types instead, so the two are written apart.

tonic::include_proto!("google.cloud.bigquery.storage.v1");
