//! Flow files: the YAML model, validation, templates and scripts.
