//! The registry's ordered pipeline of script calls. Calls are sent in
//! batches, each batch one Redis pipeline on the node's connection: Redis
//! runs a pipeline's commands in order, and one batch is on the wire at a
//! time, so calls run in exactly the order the registry made them (a
//! session's `say`s get ascending ids) and their outcomes come back in that
//! order, as with the SQLite writer. While a batch is out, new calls wait
//! and go together in the next one.

use super::{Cluster, Request};
use redis::aio::ConnectionManager;
use redis::{RedisError, RedisResult, ServerErrorKind, Value};
use tokio::sync::mpsc;

/// Calls per batch at most.
const MAX_BATCH: usize = 1024;

/// One call: the command, and what turns its answer into an outcome.
struct Call<T> {
    cmd: redis::Cmd,
    finish: Box<dyn FnOnce(RedisResult<Value>) -> T + Send>,
}

/// Hands calls to the pipeline; dropping it ends the task once the last
/// batch has reported.
#[derive(Debug)]
pub(crate) struct Link<T> {
    calls: mpsc::UnboundedSender<Call<T>>,
}

impl<T: Send + 'static> Link<T> {
    /// Starts the pipeline on the current runtime; `report` gets each
    /// outcome, in call order.
    pub(crate) fn start(cluster: Cluster, report: impl Fn(T) + 'static) -> Link<T> {
        let (calls, mut queued) = mpsc::unbounded_channel::<Call<T>>();
        actix_rt::spawn(async move {
            let mut connection: ConnectionManager = cluster.connection.clone();
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                let mut finishes = Vec::with_capacity(batch.len());
                for call in batch.drain(..) {
                    pipe.add_command(call.cmd);
                    finishes.push(call.finish);
                }
                let answers: RedisResult<Vec<RedisResult<Value>>> =
                    pipe.query_async(&mut connection).await;
                let mut forgotten = false;
                match answers {
                    Ok(answers) if answers.len() == finishes.len() => {
                        for (finish, answer) in finishes.into_iter().zip(answers) {
                            forgotten |= is_noscript(&answer);
                            report(finish(answer));
                        }
                    }
                    Ok(_) => {
                        let error = RedisError::from((
                            redis::ErrorKind::Client,
                            "Redis answered a pipeline with the wrong number of replies",
                        ));
                        for finish in finishes {
                            report(finish(Err(error.clone())));
                        }
                    }
                    Err(error) => {
                        for finish in finishes {
                            report(finish(Err(error.clone())));
                        }
                    }
                }
                // Redis restarted and forgot the scripts: load them again.
                // The calls that failed are not resent (they would run
                // behind later ones); their outcomes say they failed.
                if forgotten && let Err(error) = cluster.load_scripts().await {
                    tracing::error!(error = %error, "cannot load the scripts into Redis");
                }
            }
        });
        Link { calls }
    }

    /// Queues one call; `wrap` turns its typed answer into an outcome.
    pub(crate) fn call<R: 'static>(
        &self,
        request: Request<R>,
        wrap: impl FnOnce(RedisResult<R>) -> T + Send + 'static,
    ) {
        let Request { cmd, parse } = request;
        let finish = Box::new(move |answer: RedisResult<Value>| wrap(answer.and_then(parse)));
        // The task ends only when this sender is dropped.
        let _ = self.calls.send(Call { cmd, finish });
    }
}

fn is_noscript(answer: &RedisResult<Value>) -> bool {
    answer
        .as_ref()
        .is_err_and(|error| error.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript))
}
