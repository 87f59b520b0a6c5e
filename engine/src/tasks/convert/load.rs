//! Loading a `convert` task: its schema read and parsed now.

use crate::flow::TaskKind;
use crate::flow::load::TaskLoader;

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let config = l.decode::<super::config::ConvertConfig>()?;
    let schema = l.schema(&config.schema)?;
    Some(TaskKind::Convert { config, schema })
}
