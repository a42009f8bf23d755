"""Drives a live a2a-sandbox agent port with the official Python SDK
(a2a-sdk 1.x): resolve the card, send, a message reply, stream, get,
list, cancel, subscribe, a push config whose webhook this program serves
on loopback, and an error.

Usage: python_client.py AGENT_URL TOKEN [JSONRPC|HTTP+JSON|GRPC]
Prints one "PASS <step>" line per step; exits non-zero on the first failure.
"""

import asyncio
import http.server
import json
import queue
import sys
import threading
import uuid

import grpc
import httpx
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def user_message(text, task_id=None):
    m = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    if task_id:
        m.task_id = task_id
    return m


def with_token(details, token):
    """A gRPC call's details with the session's token added to its metadata."""
    metadata = list(details.metadata or []) + [("authorization", f"Bearer {token}")]
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class TokenOnCalls(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token):
        self.token = token

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(with_token(details, self.token), request)


class TokenOnStreams(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token):
        self.token = token

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(with_token(details, self.token), request)


def start_webhook():
    received = queue.Queue()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.put(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook", received


async def collect(stream):
    return [event async for event in stream]


def final_task(events):
    """The task as the last event left it (the SDK yields StreamResponse)."""
    tasks = [e.task for e in events if e.HasField("task")]
    check(tasks, f"a task in the responses: {events}")
    return tasks[-1]


async def main(url, token, binding):
    http_client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)

    card = await A2ACardResolver(http_client, url).get_agent_card()
    check(card.name == "Conformance agent", f"card name: {card.name}")
    check(card.capabilities.streaming, "card says streaming")
    check(card.capabilities.push_notifications, "card says push")
    check(card.supported_interfaces[0].url == url, "card URL is the one we used")
    print("PASS card")

    check(
        any(i.protocol_binding == binding for i in card.supported_interfaces),
        f"the card offers {binding}: {card.supported_interfaces}",
    )
    config = dict(
        httpx_client=http_client,
        supported_protocol_bindings=[binding],
        # gRPC: the card's target, in plain text, with the token on each call.
        grpc_channel_factory=lambda target: grpc.aio.insecure_channel(
            target, interceptors=[TokenOnCalls(token), TokenOnStreams(token)]
        ),
    )
    plain = await create_client(card, ClientConfig(streaming=False, **config))
    streaming = await create_client(card, ClientConfig(streaming=True, **config))

    events = await collect(plain.send_message(SendMessageRequest(message=user_message("complete"))))
    done = final_task(events)
    check(done.status.state == TaskState.TASK_STATE_COMPLETED, f"completed: {done.status}")
    check(done.artifacts[0].name == "result", "artifact")
    print("PASS send")

    events = await collect(plain.send_message(SendMessageRequest(message=user_message("reply"))))
    replies = [e.message for e in events if e.HasField("message")]
    check(len(replies) == 1 and not any(e.HasField("task") for e in events), f"a message, no task: {events}")
    check(replies[0].role == Role.ROLE_AGENT, f"from the agent: {replies[0]}")
    check(replies[0].parts[0].text == "reply: reply", f"the reply: {replies[0]}")
    print("PASS reply")

    events = await collect(streaming.send_message(SendMessageRequest(message=user_message("stream 2"))))
    kinds = [e.WhichOneof("payload") for e in events]
    check(kinds[0] == "task", f"stream starts with the task: {kinds}")
    check(kinds.count("status_update") >= 3, f"progress and final status: {kinds}")
    check("artifact_update" in kinds, f"an artifact update: {kinds}")
    last = events[-1].status_update
    check(last.status.state == TaskState.TASK_STATE_COMPLETED, f"stream ends completed: {last}")
    streamed_id = last.task_id
    print("PASS stream")

    got = await plain.get_task(GetTaskRequest(id=streamed_id, history_length=1))
    check(got.id == streamed_id, "get returns the task")
    check(len(got.history) == 1, f"historyLength honoured: {len(got.history)}")
    print("PASS get")

    page = await plain.list_tasks(ListTasksRequest(page_size=1))
    check(len(page.tasks) == 1 and page.total_size >= 2, f"page: {page}")
    check(page.next_page_token != "", "a next page token")
    page2 = await plain.list_tasks(ListTasksRequest(page_size=1, page_token=page.next_page_token))
    check(page2.tasks[0].id != page.tasks[0].id, "the second page moves on")
    print("PASS list")

    events = await collect(plain.send_message(SendMessageRequest(message=user_message("work"))))
    working = final_task(events)
    check(working.status.state == TaskState.TASK_STATE_WORKING, f"working: {working.status}")
    canceled = await plain.cancel_task(CancelTaskRequest(id=working.id))
    check(canceled.status.state == TaskState.TASK_STATE_CANCELED, f"canceled: {canceled.status}")
    print("PASS cancel")

    # Subscribe to a working task; a cancel ends it, and the subscription
    # sees that and ends.
    events = await collect(plain.send_message(SendMessageRequest(message=user_message("work sub"))))
    open_task = final_task(events)
    seen = []

    async def follow():
        async for event in streaming.subscribe(SubscribeToTaskRequest(id=open_task.id)):
            seen.append(event)

    watcher = asyncio.create_task(follow())
    while not seen:
        await asyncio.sleep(0.05)
    check(seen[0].HasField("task") and seen[0].task.id == open_task.id, f"the task first: {seen[0]}")
    await plain.cancel_task(CancelTaskRequest(id=open_task.id))
    await asyncio.wait_for(watcher, 10)
    last = seen[-1].status_update.status.state
    check(last == TaskState.TASK_STATE_CANCELED, f"the subscription ends canceled: {seen}")
    print("PASS subscribe")

    hook_url, received = start_webhook()
    events = await collect(plain.send_message(SendMessageRequest(message=user_message("work watch"))))
    watched = final_task(events)
    config = await plain.create_task_push_notification_config(
        TaskPushNotificationConfig(task_id=watched.id, url=hook_url, token="py-token")
    )
    check(config.id, "the server assigned a config id")
    await collect(plain.send_message(SendMessageRequest(message=user_message("complete", watched.id))))
    states = []
    while "TASK_STATE_COMPLETED" not in states:
        headers, body = await asyncio.to_thread(received.get, True, 10)
        check(headers.get("x-a2a-notification-token") == "py-token", f"token header: {headers}")
        if "statusUpdate" in body:
            states.append(body["statusUpdate"]["status"]["state"])
    print("PASS push")

    try:
        await plain.get_task(GetTaskRequest(id="no-such-task"))
        check(False, "unknown task raised")
    except AssertionError:
        raise
    except Exception as error:  # the SDK maps -32001 to its own error type
        check("TaskNotFound" in type(error).__name__, f"error: {error!r}")
        if binding != "GRPC":
            # The SDK surfaces the ErrorInfo's metadata as the error's
            # data (its gRPC transport reads the reason only).
            data = getattr(error, "data", None)
            check(data == {"taskId": "no-such-task"}, f"ErrorInfo metadata: {data!r}")
    print("PASS errors")

    await http_client.aclose()


if __name__ == "__main__":
    # The binding to use: JSONRPC (the default), HTTP+JSON or GRPC.
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "JSONRPC"))
