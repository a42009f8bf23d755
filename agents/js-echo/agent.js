// A JavaScript agent for a2a-sandbox: it says back what it heard and
// counts the messages of its session. The exports are the `agent` world
// of wit/agent.wit; module-level variables are the agent's memory for the
// life of its session.
import { log } from "a2a:agent/host@0.1.0";

let name = "JS Echo";
// Messages so far: a count, not the texts, so memory stays flat.
let heard = 0;

/** The session's config: a list of [key, value] pairs. */
export function init(config) {
  for (const [key, value] of config) {
    if (key === "name") name = value;
  }
}

export function describe() {
  return {
    name,
    description: "Says back what it heard and how many messages so far; written in JavaScript.",
    version: "0.1.0",
    skills: [{ id: "echo", name: "Echo", description: "Answers with the text it was sent", tags: ["example", "javascript"] }],
    streaming: true,
  };
}

/** One message in; the task's state out. Throwing fails the task. */
export function handle(request) {
  const text = request.message.parts
    .filter((part) => part.tag === "text")
    .map((part) => part.val)
    .join("\n");
  if (text === "fail") throw "asked to fail";
  heard += 1;
  log(2, `message ${heard} in this session`);
  return {
    state: "completed",
    message: {
      messageId: "",
      role: "agent",
      parts: [{ tag: "text", val: `${name} heard: ${text} (message ${heard})` }],
    },
    artifacts: [],
  };
}

export function cancel(_taskId) {}
