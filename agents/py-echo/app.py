"""A Python agent for a2a-sandbox: it says back what it heard and counts
the messages of its session.

`WitWorld` implements the `agent` world of wit/agent.wit. componentize-py
may make a new `WitWorld` for each call, so the agent's memory for the
life of its session lives in the module (`memory` below), not in fields.
Raising `Err(text)` from `handle` fails the task with that text.
"""
import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Info,
    Message,
    Part_Text,
    Role,
    Skill,
    TaskState,
    Update,
)


class Memory:
    """What this agent remembers in its session."""

    def __init__(self):
        self.name = "Python Echo"
        # Messages so far: a count, not the texts, so memory stays flat.
        self.heard = 0


memory = Memory()


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        for key, value in config:
            if key == "name":
                memory.name = value

    def describe(self):
        return Info(
            name=memory.name,
            description="Says back what it heard and how many messages so far; written in Python.",
            version="0.1.0",
            skills=[
                Skill(
                    id="echo",
                    name="Echo",
                    description="Answers with the text it was sent",
                    tags=["example", "python"],
                )
            ],
            streaming=True,
        )

    def handle(self, req):
        text = "\n".join(p.value for p in req.message.parts if isinstance(p, Part_Text))
        if text == "fail":
            raise Err("asked to fail")
        memory.heard += 1
        host.log(2, f"message {memory.heard} in this session")
        answer = f"{memory.name} heard: {text} (message {memory.heard})"
        return Update(
            state=TaskState.COMPLETED,
            message=Message(
                message_id="",
                role=Role.AGENT,
                parts=[Part_Text(answer)],
                context_id=None,
                task_id=None,
            ),
            artifacts=[],
        )

    def cancel(self, task_id):
        pass
