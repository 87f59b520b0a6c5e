//! The flows and resources the demo runs, built into the binary so `bulkflow demo` works from any
//! directory. They are written into the demo directory on every start, where a user can read them.

use std::path::Path;

macro_rules! asset {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../", $path)))
    };
}

/// The seed's listener unchanged; for Account, the delete-aware query and writer flows in place
/// of the seed's (which export and upsert only); the flows for Contact and Opportunity, and the
/// PostgreSQL writer variants, with their SOQL and schemas. Every object follows deletes.
const FILES: &[(&str, &str)] = &[
    asset!("workflows/account/salesforce_bulkapi_deletes_query_account.yaml"),
    asset!("workflows/seed/salesforce_bulkapi_job_listener.yaml"),
    asset!("workflows/account/salesforce_bulkapi_deletes_writer_account.yaml"),
    asset!("workflows/contact/salesforce_bulkapi_query_contact.yaml"),
    asset!("workflows/contact/salesforce_bulkapi_writer_contact.yaml"),
    asset!("workflows/opportunity/salesforce_bulkapi_query_opportunity.yaml"),
    asset!("workflows/opportunity/salesforce_bulkapi_writer_opportunity.yaml"),
    asset!("workflows/postgres/salesforce_bulkapi_writer_account_postgres.yaml"),
    asset!("workflows/postgres/salesforce_bulkapi_writer_contact_postgres.yaml"),
    asset!("workflows/postgres/salesforce_bulkapi_writer_opportunity_postgres.yaml"),
    asset!("resources/salesforce/query_account_deletes.soql"),
    asset!("resources/salesforce/schema_account.json"),
    asset!("resources/salesforce/query_contact.soql"),
    asset!("resources/salesforce/schema_contact.json"),
    asset!("resources/salesforce/query_opportunity.soql"),
    asset!("resources/salesforce/schema_opportunity.json"),
];

/// The folder of the PostgreSQL writer flows, left out when the warehouse is off.
pub const POSTGRES_FLOWS: &str = "workflows/postgres";

/// The schema JSON of `object` (lower case), as the writer flows use it.
pub fn schema(object: &str) -> Option<&'static str> {
    let path = format!("resources/salesforce/schema_{object}.json");
    FILES.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

/// Writes every asset under `dir` (`dir/workflows/...`, `dir/resources/...`).
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (path, text) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The seed's Account flows, which the delete-aware ones replace in the demo.
    const REPLACED: [&str; 2] = [
        "workflows/seed/salesforce_bulkapi_query_account.yaml",
        "workflows/seed/salesforce_bulkapi_writer_account.yaml",
    ];

    /// Every flow of the repository's `workflows/` but the replaced seed ones is part of the demo,
    /// so the two never drift.
    #[test]
    fn the_demo_runs_every_flow_of_the_repository() {
        let mut repo = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("workflows")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    repo.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        repo.retain(|p| !REPLACED.contains(&p.as_str()));
        repo.sort();
        let mut demo: Vec<String> =
            super::FILES.iter().map(|(p, _)| p.to_string()).filter(|p| p.starts_with("workflows/")).collect();
        demo.sort();
        assert_eq!(demo, repo);
    }
}
