use crate::event::{Event, EventData};
use crate::flow::script::{Output, Script};
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};

/// Runs the script on each event. A script error is a property of the data, so it is not retried.
pub struct ScriptProcessor {
    pub flow: String,
    pub task: String,
    pub script: Script,
}

impl Processor for ScriptProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            // Scripts are short and CPU-bound; running them inline keeps per-event order simple.
            let result =
                self.script.run(&self.flow, &self.task, &event).map_err(|e| TaskError::Fatal(e.to_string()))?;
            let fan_out = result.outputs.len() > 1;
            for (i, output) in result.outputs.into_iter().enumerate() {
                let mut next = event.clone();
                next.meta = result.meta.clone();
                if let Output::Data(data) = output {
                    next.data = EventData::Json(data);
                }
                if fan_out {
                    next.id = format!("{}.{i}", event.id);
                }
                out.emit(next).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::processor::Envelope;
    use crate::runtime::token::{Outcome, Token};
    use serde_json::json;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn fan_out_gives_each_output_its_own_id_and_the_new_meta() {
        let p = ScriptProcessor {
            flow: "f".into(),
            task: "t".into(),
            script: Script::compile("ctx.meta.k = 1; [#{n: 1}, #{n: 2}]").unwrap(),
        };
        let (tx, mut rx) = mpsc::channel(4);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut out = Emitter::new(vec![tx], Token::new(move |o| done_tx.send(o).unwrap()));
        p.process(Event::json("e", json!({})), &mut out).await.unwrap();
        out.token.take().unwrap().complete();
        let mut seen = Vec::new();
        while let Ok(Envelope { event, token }) = rx.try_recv() {
            assert_eq!(event.meta["k"], json!(1));
            seen.push((event.id.clone(), event.template_view()["data"].clone()));
            token.complete();
        }
        assert_eq!(seen, vec![("e.0".to_string(), json!({"n": 1})), ("e.1".to_string(), json!({"n": 2}))]);
        assert_eq!(done_rx.try_recv().unwrap(), Outcome::Completed);
    }
}
