// Drives a live a2a-sandbox agent port with the official JavaScript SDK
// (@a2a-js/sdk): resolve the card, send, a message reply, stream, get,
// list, cancel, subscribe, a push config whose webhook this program
// serves on loopback, and an error.
//
// Usage: node js_client.mjs AGENT_URL TOKEN [JSONRPC|HTTP+JSON]
// Prints one "PASS <step>" line per step; exits non-zero on the first failure.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from '@a2a-js/sdk/client';

const [url, token, binding = 'JSONRPC'] = process.argv.slice(2);
const TaskState = { WORKING: 2, COMPLETED: 3, CANCELED: 5 };
const ROLE_USER = 1;

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

// Every request carries the session's bearer token.
const authFetch = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const userMessage = (text, taskId = '') => ({
  messageId: randomUUID(),
  contextId: '',
  taskId,
  role: ROLE_USER,
  parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: '' }],
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});

const send = (text, taskId) => ({ tenant: '', message: userMessage(text, taskId), configuration: undefined, metadata: undefined });

function startWebhook() {
  const received = [];
  let wake = () => {};
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200).end();
      wake();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const next = () =>
        new Promise((ok, fail) => {
          if (received.length) return ok(received.shift());
          const timer = setTimeout(() => fail(new Error('no push notification within 10 s')), 10000);
          wake = () => {
            clearTimeout(timer);
            ok(received.shift());
          };
        });
      resolve({ url: `http://127.0.0.1:${server.address().port}/hook`, next, close: () => server.close() });
    }),
  );
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [
      new JsonRpcTransportFactory({ fetchImpl: authFetch }),
      new RestTransportFactory({ fetchImpl: authFetch }),
    ],
    preferredTransports: [binding],
    cardResolver: new DefaultAgentCardResolver({ fetchImpl: authFetch }),
  }),
);

const card = await new DefaultAgentCardResolver({ fetchImpl: authFetch }).resolve(url);
check(card.name === 'Conformance agent', `card name ${card.name}`);
check(card.capabilities.streaming === true, 'card says streaming');
check(card.supportedInterfaces[0].url === url, 'card URL is the one we used');
console.log('PASS card');

const client = await factory.createFromUrl(url);

const done = await client.sendMessage(send('complete'));
check(done.status?.state === TaskState.COMPLETED, `completed: ${JSON.stringify(done.status)}`);
check(done.artifacts[0].name === 'result', 'artifact');
console.log('PASS send');

const reply = await client.sendMessage(send('reply'));
check(reply.messageId && reply.status === undefined, `a message, no task: ${JSON.stringify(reply)}`);
check(reply.parts[0]?.content?.value === 'reply: reply', `the reply: ${JSON.stringify(reply)}`);
console.log('PASS reply');

const kinds = [];
let last;
for await (const event of client.sendMessageStream(send('stream 2'))) {
  kinds.push(event.payload?.$case);
  last = event.payload;
}
check(kinds[0] === 'task', `stream starts with the task: ${kinds}`);
check(kinds.includes('artifactUpdate'), `an artifact update: ${kinds}`);
check(last.$case === 'statusUpdate' && last.value.status.state === TaskState.COMPLETED, `ends completed: ${kinds}`);
const streamedId = last.value.taskId;
console.log('PASS stream');

const got = await client.getTask({ tenant: '', id: streamedId, historyLength: 1 });
check(got.id === streamedId, 'get returns the task');
check(got.history.length === 1, `historyLength honoured: ${got.history.length}`);
console.log('PASS get');

const page = await client.listTasks({ tenant: '', pageSize: 1, pageToken: '', contextId: '', historyLength: undefined, includeArtifacts: undefined, statusTimestampAfter: undefined, status: 0 });
check(page.tasks.length === 1 && page.totalSize >= 2, `page: ${JSON.stringify(page).slice(0, 200)}`);
check(page.nextPageToken !== '', 'a next page token');
console.log('PASS list');

const working = await client.sendMessage(send('work'));
check(working.status?.state === TaskState.WORKING, 'working');
const canceled = await client.cancelTask({ tenant: '', id: working.id, metadata: undefined });
check(canceled.status?.state === TaskState.CANCELED, 'canceled');
console.log('PASS cancel');

// Subscribe to a working task; a cancel ends it, and the subscription
// sees that and ends.
const open = await client.sendMessage(send('work sub'));
const seen = [];
const watcher = (async () => {
  for await (const event of client.resubscribeTask({ tenant: '', id: open.id })) seen.push(event.payload);
})();
while (seen.length === 0) await new Promise((ok) => setTimeout(ok, 50));
check(seen[0]?.$case === 'task' && seen[0].value.id === open.id, `the task first: ${JSON.stringify(seen[0])}`);
await client.cancelTask({ tenant: '', id: open.id, metadata: undefined });
await watcher;
const ended = seen[seen.length - 1];
check(ended?.$case === 'statusUpdate' && ended.value.status?.state === TaskState.CANCELED,
  `the subscription ends canceled: ${JSON.stringify(ended)}`);
console.log('PASS subscribe');

const hook = await startWebhook();
const watched = await client.sendMessage(send('work watch'));
const config = await client.createTaskPushNotificationConfig({
  tenant: '', id: '', taskId: watched.id, url: hook.url, token: 'js-token', authentication: undefined,
});
check(config.id !== '', 'the server assigned a config id');
await client.sendMessage(send('complete', watched.id));
for (;;) {
  const { headers, body } = await hook.next();
  check(headers['x-a2a-notification-token'] === 'js-token', 'token header');
  if (body.statusUpdate?.status?.state === 'TASK_STATE_COMPLETED') break;
}
hook.close();
console.log('PASS push');

let raised = null;
try {
  await client.getTask({ tenant: '', id: 'no-such-task', historyLength: undefined });
} catch (error) {
  raised = error;
}
check(/TaskNotFound/.test(raised?.name ?? raised?.constructor?.name), `unknown task raises task-not-found: ${raised}`);
if (binding === 'HTTP+JSON') {
  // Over REST: HTTP 404, and the ErrorInfo's metadata on the error.
  check(
    raised.statusCode === 404 && raised.metadata?.taskId === 'no-such-task',
    `ErrorInfo as the SDK surfaces it: ${raised.statusCode} ${JSON.stringify(raised.metadata)}`,
  );
} else {
  // Over JSON-RPC the error keeps the data: a google.rpc.ErrorInfo first.
  const info = (raised?.data ?? [])[0] ?? {};
  check(
    info['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo' && info.reason === 'TASK_NOT_FOUND' &&
      info.domain === 'a2a-protocol.org' && info.metadata?.taskId === 'no-such-task',
    `ErrorInfo as the SDK surfaces it: ${JSON.stringify(raised?.data)}`,
  );
}
console.log('PASS errors');
