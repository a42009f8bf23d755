// The official A2A JavaScript SDK of the 0.3 line (@a2a-js/sdk 0.3.x)
// against a live agent, in the 0.3 dialect: resolve the 0.3 card, send,
// a message reply, stream, get, cancel, a push config round trip, and an
// error. Prints one PASS line per step; any failure throws.
import { randomUUID } from 'node:crypto';
import { A2AClient } from '@a2a-js/sdk/client';

const [url, token] = process.argv.slice(2);

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const authFetch = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` } });

const message = (text, taskId) => ({
  kind: 'message',
  messageId: randomUUID(),
  role: 'user',
  parts: [{ kind: 'text', text }],
  ...(taskId ? { taskId } : {}),
});

/** The result of a JSON-RPC response, or a failure naming its error. */
function result(response, what) {
  check(!('error' in response) || !response.error, `${what}: ${JSON.stringify(response.error)}`);
  return response.result;
}

const client = await A2AClient.fromCardUrl(`${url}.well-known/agent.json`, { fetchImpl: authFetch });
const card = await client.getAgentCard();
check(card.protocolVersion?.startsWith('0.3'), `a 0.3 card: ${card.protocolVersion}`);
check(card.url === url, `card URL is the one we used: ${card.url}`);
console.log('PASS card');

const done = result(await client.sendMessage({ message: message('complete') }), 'send');
check(done.kind === 'task' && done.status.state === 'completed', `completed: ${JSON.stringify(done.status)}`);
check(done.artifacts[0].name === 'result', 'artifact');
console.log('PASS send');

const reply = result(await client.sendMessage({ message: message('reply') }), 'reply');
check(reply.kind === 'message' && reply.role === 'agent', `a message: ${JSON.stringify(reply)}`);
check(reply.parts[0].text === 'reply: reply', `the reply: ${JSON.stringify(reply)}`);
console.log('PASS reply');

const kinds = [];
let last;
for await (const event of client.sendMessageStream({ message: message('stream 2') })) {
  kinds.push(event.kind);
  last = event;
}
check(kinds[0] === 'task', `stream starts with the task: ${kinds}`);
check(kinds.includes('artifact-update'), `an artifact update: ${kinds}`);
check(last.kind === 'status-update' && last.final === true, `the last event is final: ${JSON.stringify(last)}`);
check(last.status.state === 'completed', `stream ends completed: ${JSON.stringify(last.status)}`);
console.log('PASS stream');

const got = result(await client.getTask({ id: last.taskId, historyLength: 1 }), 'get');
check(got.id === last.taskId && got.history.length === 1, `get with historyLength: ${JSON.stringify(got)}`);
console.log('PASS get');

const working = result(await client.sendMessage({ message: message('work') }), 'work');
check(working.status.state === 'working', `working: ${JSON.stringify(working.status)}`);
const canceled = result(await client.cancelTask({ id: working.id }), 'cancel');
check(canceled.status.state === 'canceled', `canceled: ${JSON.stringify(canceled.status)}`);
console.log('PASS cancel');

const watched = result(await client.sendMessage({ message: message('work watch') }), 'watch');
const hook = 'http://127.0.0.1:9/js03-hook';
const set = result(
  await client.setTaskPushNotificationConfig({
    taskId: watched.id,
    pushNotificationConfig: { id: 'js-hook', url: hook, token: 'js03' },
  }),
  'set push config',
);
check(set.taskId === watched.id && set.pushNotificationConfig.id === 'js-hook', `set: ${JSON.stringify(set)}`);
const fetched = result(
  await client.getTaskPushNotificationConfig({ id: watched.id, pushNotificationConfigId: 'js-hook' }),
  'get push config',
);
check(fetched.pushNotificationConfig.url === hook && fetched.pushNotificationConfig.token === 'js03',
  `get: ${JSON.stringify(fetched)}`);
const listed = result(await client.listTaskPushNotificationConfig({ id: watched.id }), 'list push configs');
check(Array.isArray(listed) && listed.length === 1, `list: ${JSON.stringify(listed)}`);
result(
  await client.deleteTaskPushNotificationConfig({ id: watched.id, pushNotificationConfigId: 'js-hook' }),
  'delete push config',
);
const after = result(await client.listTaskPushNotificationConfig({ id: watched.id }), 'list after delete');
check(after.length === 0, `deleted: ${JSON.stringify(after)}`);
console.log('PASS push');

let missing;
try {
  missing = await client.getTask({ id: 'no-such-task' });
} catch (error) {
  missing = { error: { code: error.code ?? error.errorResponse?.error?.code, message: String(error) } };
}
check(missing.error?.code === -32001, `task not found: ${JSON.stringify(missing)}`);
console.log('PASS errors');
