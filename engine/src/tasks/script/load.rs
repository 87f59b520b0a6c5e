//! Loading a `script` task: its Rhai code compiled now, so a syntax error points at its line in the
//! flow file.

use crate::flow::Mark;
use crate::flow::TaskKind;
use crate::flow::load::TaskLoader;
use crate::flow::script::{Script, ScriptError};

pub(crate) fn load(l: &mut TaskLoader<'_, '_>) -> Option<TaskKind> {
    let config = l.decode::<super::config::ScriptConfig>()?;
    let compiled = match config.max_operations {
        Some(limit) => Script::compile_with_limit(&config.code, limit),
        None => Script::compile(&config.code),
    };
    match compiled {
        Ok(script) => Some(TaskKind::Script { config, script }),
        Err(ScriptError::Syntax { line, message }) => {
            // The scalar's mark is its first line of code: a block scalar's (`code: |`)
            // content line, an inline one's opening quote.
            let mark = Mark { line: config.code.mark.line + line.saturating_sub(1), column: config.code.mark.column };
            l.error(mark, config.code.path.clone(), format!("Rhai syntax error at script line {line}: {message}"));
            None
        }
        Err(e) => {
            l.error(config.code.mark, config.code.path.clone(), e.to_string());
            None
        }
    }
}
