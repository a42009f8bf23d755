//! `sdk-peer ADDR`: the official Rust SDK (`a2a-server-lf`) serving an
//! echo agent over JSON-RPC at `/`, with the SDK's own request handler
//! and in-memory task store. Each SendMessage gets a completed task whose
//! status message repeats the text, as a2a-sandbox's echo agent answers.

use std::sync::Arc;

use a2a::{
    A2AError, Message, Part, Role, StreamResponse, Task, TaskState, TaskStatus,
};
use a2a_server::{AgentExecutor, DefaultRequestHandler, ExecutorContext, InMemoryTaskStore};
use futures::stream::{self, BoxStream};

struct Echo;

impl AgentExecutor for Echo {
    fn execute(&self, ctx: ExecutorContext) -> BoxStream<'static, Result<StreamResponse, A2AError>> {
        let heard = ctx
            .message
            .as_ref()
            .and_then(Message::text)
            .unwrap_or_default()
            .to_string();
        let mut reply = Message::new(Role::Agent, vec![Part::text(format!("heard: {heard}"))]);
        reply.task_id = Some(ctx.task_id.clone());
        reply.context_id = Some(ctx.context_id.clone());
        let done = Task {
            id: ctx.task_id,
            context_id: ctx.context_id,
            status: TaskStatus {
                state: TaskState::Completed,
                message: Some(reply),
                timestamp: None,
            },
            artifacts: None,
            history: None,
            metadata: None,
        };
        Box::pin(stream::iter([Ok(StreamResponse::Task(done))]))
    }

    fn cancel(&self, _ctx: ExecutorContext) -> BoxStream<'static, Result<StreamResponse, A2AError>> {
        Box::pin(stream::empty())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let handler = Arc::new(DefaultRequestHandler::new(Echo, InMemoryTaskStore::new()));
    let app = axum::Router::new().merge(a2a_server::jsonrpc::jsonrpc_router(handler));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.expect("serve");
}
