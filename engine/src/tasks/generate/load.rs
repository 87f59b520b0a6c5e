//! Loading a `generate` task: a trigger: exactly one of `cron` (with an optional `timezone`) or
//! `interval`.

use crate::flow::TaskKind;
use crate::flow::load::TaskLoader;

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let (node, path) = (l.node, l.path);
    use crate::schedule::{Trigger, TriggerError};
    let config = l.decode::<super::config::GenerateConfig>()?;
    let tz = config.timezone.as_ref().map(|t| t.value.as_str());
    let trigger = match (&config.cron, &config.interval) {
        (Some(cron), None) => Trigger::cron(cron, tz),
        (None, Some(every)) => match &config.timezone {
            Some(t) => {
                l.error(t.mark, t.path.clone(), "`timezone` applies to `cron`, not to `interval`");
                return None;
            }
            None => Trigger::interval(every.value.0),
        },
        _ => {
            l.error(node.mark, path, "a `generate` task needs exactly one of `cron` or `interval`");
            return None;
        }
    };
    match trigger {
        Ok(trigger) => Some(TaskKind::Generate { config, trigger }),
        Err(e) => {
            let place = match &e {
                TriggerError::Cron { .. } => config.cron.as_ref().map(|c| (c.mark, c.path.clone())),
                TriggerError::Timezone(_) => config.timezone.as_ref().map(|t| (t.mark, t.path.clone())),
                TriggerError::Interval(_) => config.interval.as_ref().map(|i| (i.mark, i.path.clone())),
            };
            let (mark, key) = place.unwrap_or((node.mark, path.to_string()));
            l.error(mark, key, e.to_string());
            None
        }
    }
}
