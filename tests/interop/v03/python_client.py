"""The official A2A Python SDK of the 0.3 line (a2a-sdk 0.3.x) against a
live agent, in the 0.3 dialect: resolve the 0.3 card, send, a message
reply, stream, get, cancel, a push config round trip, and an error.
Prints one PASS line per step; any failure raises."""

import asyncio
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    GetTaskPushNotificationConfigParams,
    Message,
    Part,
    PushNotificationConfig,
    Role,
    TaskIdParams,
    TaskPushNotificationConfig,
    TaskQueryParams,
    TaskState,
    TextPart,
)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def user_message(text, task_id=None):
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.user,
        parts=[Part(root=TextPart(text=text))],
        task_id=task_id,
    )


async def collect(stream):
    return [event async for event in stream]


def last_task(events):
    """The task as the last event left it (the SDK yields (task, update) pairs)."""
    tasks = [e[0] for e in events if isinstance(e, tuple)]
    check(tasks, f"a task in the responses: {events}")
    return tasks[-1]


async def main(url, token):
    http_client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)

    resolver = A2ACardResolver(http_client, url, agent_card_path=".well-known/agent.json")
    card = await resolver.get_agent_card()
    check(card.protocol_version.startswith("0.3"), f"a 0.3 card: {card.protocol_version}")
    check(card.url == url, f"card URL is the one we used: {card.url}")
    check(card.capabilities.streaming, "card says streaming")
    print("PASS card")

    plain = ClientFactory(ClientConfig(streaming=False, httpx_client=http_client)).create(card)
    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http_client)).create(card)

    done = last_task(await collect(plain.send_message(user_message("complete"))))
    check(done.status.state == TaskState.completed, f"completed: {done.status}")
    check(done.artifacts[0].name == "result", "artifact")
    print("PASS send")

    events = await collect(plain.send_message(user_message("reply")))
    check(len(events) == 1 and isinstance(events[0], Message), f"one message: {events}")
    check(events[0].role == Role.agent, f"from the agent: {events[0]}")
    check(events[0].parts[0].root.text == "reply: reply", f"the reply: {events[0]}")
    print("PASS reply")

    events = await collect(streaming.send_message(user_message("stream 2")))
    updates = [e[1] for e in events if isinstance(e, tuple) and e[1] is not None]
    kinds = [u.kind for u in updates]
    check("artifact-update" in kinds, f"an artifact update: {kinds}")
    check(kinds.count("status-update") >= 3, f"progress and final status: {kinds}")
    check(updates[-1].final, f"the last update is final: {updates[-1]}")
    streamed = last_task(events)
    check(streamed.status.state == TaskState.completed, f"stream ends completed: {streamed.status}")
    print("PASS stream")

    got = await plain.get_task(TaskQueryParams(id=streamed.id, history_length=1))
    check(got.id == streamed.id, "get returns the task")
    check(len(got.history) == 1, f"historyLength honoured: {len(got.history)}")
    print("PASS get")

    working = last_task(await collect(plain.send_message(user_message("work"))))
    check(working.status.state == TaskState.working, f"working: {working.status}")
    canceled = await plain.cancel_task(TaskIdParams(id=working.id))
    check(canceled.status.state == TaskState.canceled, f"canceled: {canceled.status}")
    print("PASS cancel")

    watched = last_task(await collect(plain.send_message(user_message("work watch"))))
    hook = "http://127.0.0.1:9/py03-hook"
    config = await plain.set_task_callback(
        TaskPushNotificationConfig(
            task_id=watched.id,
            push_notification_config=PushNotificationConfig(id="py-hook", url=hook, token="py03"),
        )
    )
    check(config.push_notification_config.id == "py-hook", f"config: {config}")
    got = await plain.get_task_callback(
        GetTaskPushNotificationConfigParams(id=watched.id, push_notification_config_id="py-hook")
    )
    check(got.task_id == watched.id, f"the config's task: {got}")
    check(got.push_notification_config.url == hook, f"the config's URL: {got}")
    check(got.push_notification_config.token == "py03", f"the config's token: {got}")
    print("PASS push")

    try:
        await plain.get_task(TaskQueryParams(id="no-such-task"))
        check(False, "unknown task raised")
    except AssertionError:
        raise
    except Exception as error:  # the SDK raises its JSON-RPC error type
        code = getattr(getattr(error, "error", None), "code", None)
        check(code == -32001, f"task not found: {error!r}")
    print("PASS errors")

    await http_client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
