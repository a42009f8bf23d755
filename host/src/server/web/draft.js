// The draft page: a client of /v1/drafts. One tab, one draft; every
// text from a drafter is inserted as text, never as HTML.
"use strict";

const HUMAN = 4;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
};
const pos = (p) => el("span", { class: `pos ${p}` }, p);

let lineup = null;   // GET /v1/drafts: the default drafters
let draft = null;    // the snapshot the draft started with
let token = null;
let events = null;   // EventSource
let available = [];
let picks = [];
let filter = "ALL";
let myTurn = false;
let tip = null;

// What to tell a person when the server refuses, by the refusal's code.
const ADVICE = {
  server_full: "The server is full right now. Try again in a minute.",
  ports_exhausted: "The server is full right now. Try again in a minute.",
  instances_exhausted: "The server is full right now. Try again in a minute.",
  too_many_sessions: "You have as many drafts open as one address may. End a draft in another tab, then try again.",
  rate_limited: "That was too many requests at once. Wait a few seconds, then try again.",
  draining: "The server is restarting. Try again in a few seconds.",
};

/** A refusal from the server: its HTTP status, code and advice. */
class Refused extends Error {
  constructor(status, code, message, retryAfter) {
    const wait = retryAfter ? ` (the server asks to wait ${retryAfter} s)` : "";
    super(`${ADVICE[code] || message || `The server answered HTTP ${status}.`}${wait}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let r;
  try {
    r = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  } catch (_) {
    throw new Error("The server cannot be reached. Check that it is running, then reload.");
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: a proxy's page */ }
  if (!r.ok) {
    const error = (data && data.error) || {};
    throw new Refused(r.status, error.code, error.message, r.headers.get("retry-after"));
  }
  return data;
}

function setStatus(text) { $("status").textContent = text; }

function renderCards(teams, editable) {
  const box = $("teams");
  box.replaceChildren();
  for (const t of teams.filter((t) => t.team !== HUMAN && !t.human)) {
    const persona = el("textarea", { id: `persona-${t.team}`, maxlength: "200", rows: "2" });
    persona.value = t.persona || "";
    persona.readOnly = !editable;
    box.append(el("article", { class: "card", id: `card-${t.team}`, "data-team": t.team },
      el("h2", {}, t.name),
      el("p", { class: "strategy" }, t.description || ""),
      el("label", { for: `persona-${t.team}` }, "Personality"),
      persona,
      el("p", { class: "health", id: `health-${t.team}` }, "No calls yet"),
      el("ul", { class: "roster", id: `roster-${t.team}` })));
  }
}

async function loadLineup() {
  lineup = await api("GET", "/v1/drafts");
  const rounds = $("rounds");
  for (let r = 1; r <= lineup.max_rounds; r++) rounds.append(el("option", { value: r }, r));
  rounds.value = lineup.rounds;
  renderCards(lineup.teams, true);
}

async function start() {
  const personas = {};
  for (const t of lineup.teams) personas[t.team] = $(`persona-${t.team}`).value.trim();
  $("start").disabled = true;
  setStatus("Starting…");
  try {
    if (draft) await endDraft();
    token = null;
    const created = await api("POST", "/v1/drafts", { rounds: Number($("rounds").value), personas });
    token = created.token;
    draft = created;
    document.body.dataset.draft = draft.id;
  } catch (e) {
    setStatus(`Could not start: ${e.message}`);
    $("start").disabled = false;
    return;
  }
  available = draft.available.slice();
  picks = [];
  myTurn = false;
  tip = null;
  renderCards(draft.teams, false);
  $("feed").replaceChildren();
  calls = [];
  $("calls").tBodies[0].replaceChildren();
  $("inspector-filter").replaceChildren(el("option", { value: "all" }, "All"),
    ...draft.teams.filter((t) => !t.human).map((t) => el("option", { value: t.team }, t.name)));
  $("summary").hidden = true;
  $("players").hidden = false;
  $("turn").hidden = true;
  $("game").hidden = false;
  $("end").hidden = false;
  $("rounds").disabled = true;
  $("start").textContent = "New draft";
  renderBoard();
  renderAvailable();
  setStatus("Drafting…");
  showSandbox(draft.id);
  events = new EventSource(`/v1/drafts/${draft.id}/events?token=${encodeURIComponent(token)}`);
  events.onmessage = (m) => onEvent(JSON.parse(m.data));
  // EventSource reconnects by itself and resumes after the last event it
  // saw (Last-Event-ID); the page says what is happening meanwhile.
  let statusBeforeLoss = null;
  events.onopen = () => {
    if (statusBeforeLoss !== null) setStatus(statusBeforeLoss);
    statusBeforeLoss = null;
  };
  events.onerror = () => {
    if (!events || !draft) return;
    if (events.readyState === EventSource.CONNECTING) {
      if (statusBeforeLoss === null) statusBeforeLoss = $("status").textContent;
      setStatus("Connection lost. Reconnecting…");
      return;
    }
    explainLostDraft(draft.id);
  };
  $("start").disabled = false;
}

// The draft's session: its id, mode and expiry, and each drafter's A2A
// endpoint with a link to its card.
async function showSandbox(id) {
  let session;
  try {
    session = await api("GET", `/v1/drafts/${id}/session`);
  } catch (e) {
    $("sandbox-session").textContent = `Session details unavailable: ${e.message}`;
    $("sandbox").hidden = false;
    return;
  }
  const expires = session.expires_at ? `, expires ${new Date(session.expires_at).toLocaleTimeString()}` : "";
  $("sandbox-session").textContent = `Session ${session.id} · ${session.mode} mode${expires}`;
  $("endpoints").replaceChildren(...session.agents.map((a) =>
    el("li", {},
      el("strong", {}, a.name), " ",
      el("code", { class: "endpoint" }, a.url), " ",
      el("a", { href: a.card_url, target: "_blank", rel: "noopener" }, "agent card"))));
  $("sandbox").hidden = false;
}

// The event stream closed for good: say why, and what to do.
async function explainLostDraft(id) {
  try {
    await api("GET", `/v1/drafts/${id}`);
    setStatus("Lost the connection to this draft. Reload the page to rejoin it.");
  } catch (e) {
    const gone = e instanceof Refused && (e.status === 404 || e.status === 401 || e.status === 403);
    setStatus(gone
      ? "This draft is gone: the server restarted, or the draft ended or expired. Start a new draft."
      : e.message);
  }
  if (events) { events.close(); events = null; }
  document.body.dataset.lost = "true";
}

function teamName(n) { return draft.teams[n - 1].name; }

function feed(item) {
  const list = $("feed");
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function onEvent(ev) {
  switch (ev.type) {
    case "pick": return onPick(ev);
    case "comment":
      return feed(el("li", { class: "comment" },
        el("span", { class: "who" }, ev.team_name), ": ", ev.text));
    case "turn": return onTurn(ev);
    case "round":
      return feed(el("li", { class: "round" }, `End of round ${ev.round}`));
    case "done": return onDone(ev);
    case "call": return onCall(ev);
  }
}

// Every call the draft engine made to a drafter, as it happened: a row
// each, the JSON-RPC request and answer behind a button.
let calls = [];
function onCall(ev) {
  calls.push(ev);
  const details = el("tr", { class: "call-body", hidden: "" },
    el("td", { colspan: "8" },
      el("h3", {}, "Request"), el("pre", {}, pretty(ev.request)),
      el("h3", {}, ev.error ? `Answer (${ev.error})` : "Answer"), el("pre", {}, pretty(ev.response))));
  const toggle = el("button", { class: "show", "aria-expanded": "false",
    onclick: () => {
      details.hidden = !details.hidden;
      toggle.setAttribute("aria-expanded", String(!details.hidden));
      toggle.textContent = details.hidden ? "Show" : "Hide";
    } }, "Show");
  const row = el("tr", { class: `call${ev.error ? " failed" : ""}`, "data-team": ev.team },
    el("td", {}, ev.team_name), el("td", {}, ev.purpose), el("td", {}, ev.method),
    el("td", { title: ev.task_id || "" }, ev.task_id ? ev.task_id.slice(0, 8) : "—"),
    el("td", {}, ev.state.replace("TASK_STATE_", "").toLowerCase()),
    el("td", { class: "num" }, ev.latency_ms.toFixed(1)), el("td", { class: "num" }, ev.bytes),
    el("td", {}, toggle));
  const shown = $("inspector-filter").value;
  if (shown !== "all" && shown !== String(ev.team)) { row.hidden = true; }
  $("calls").tBodies[0].append(row, details);
  renderHealth(ev.team);
}

// Headers, then the JSON body indented, when it is JSON.
function pretty(text) {
  const split = text.lastIndexOf("\n\n");
  const [head, body] = split >= 0 ? [text.slice(0, split + 2), text.slice(split + 2)] : ["", text];
  try { return head + JSON.stringify(JSON.parse(body), null, 2); } catch (_) { return text; }
}

function filterCalls() {
  const shown = $("inspector-filter").value;
  for (const row of $("calls").tBodies[0].rows) {
    if (row.classList.contains("call-body")) { row.hidden = true; continue; }
    row.hidden = shown !== "all" && row.dataset.team !== shown;
    const button = row.querySelector("button.show");
    if (button) { button.textContent = "Show"; button.setAttribute("aria-expanded", "false"); }
  }
}

// A drafter's health on its card: calls, median latency, fallbacks,
// failed calls (traps among them: each recycles the drafter's instance).
function renderHealth(team) {
  const box = $(`health-${team}`);
  if (!box) return;
  const mine = calls.filter((c) => c.team === team);
  const times = mine.map((c) => c.latency_ms).sort((a, b) => a - b);
  const p50 = times.length ? times[Math.floor((times.length - 1) / 2)].toFixed(1) : "—";
  const fallbacks = picks.filter((p) => p.team === team && p.by === "fallback").length;
  const failed = mine.filter((c) => c.error).length;
  const traps = mine.filter((c) => /-32006/.test(c.error || "")).length;
  box.textContent = `${mine.length} calls · p50 ${p50} ms · ${fallbacks} fallbacks · ${failed} failed (${traps} traps)`;
  // Why each fallback happened, on hover and for screen readers.
  const why = picks.filter((p) => p.team === team && p.by === "fallback").map((p) => p.note).filter(Boolean);
  if (why.length) box.title = why.join("\n");
  else box.removeAttribute("title");
}

function onPick(ev) {
  picks.push(ev);
  available = available.filter((p) => p.name !== ev.player.name);
  const mine = ev.team === HUMAN;
  const item = el("li", { class: `pick${mine ? " you" : ""}`, "data-pick": ev.pick },
    el("span", { class: "num" }, `${ev.pick}.`),
    el("span", { class: "who" }, ev.team_name), " took ",
    pos(ev.player.position), " ", el("strong", {}, ev.player.name), ` (${ev.player.team})`);
  if (ev.by === "advisor") item.append(el("span", { class: "why" }, "The advisor picked for you."));
  if (ev.reasoning) item.append(el("span", { class: "why" }, ev.reasoning));
  if (ev.trash_talk) item.append(el("span", { class: "talk" }, `“${ev.trash_talk}”`));
  if (ev.note) item.append(el("span", { class: "fallback" }, ev.note));
  if (ev.from_model) {
    item.append(el("span", { class: "model", title: "These lines came from the language model" },
      "lines by the model"));
  }
  feed(item);
  if (ev.by === "fallback") renderHealth(ev.team);
  const roster = $(`roster-${ev.team}`);
  if (roster) roster.append(el("li", {}, pos(ev.player.position), " ", ev.player.name));
  if (mine) { myTurn = false; $("turn").hidden = true; }
  document.querySelectorAll(".card").forEach((c) => c.classList.remove("on-clock"));
  const next = picks.length + 1;
  if (next <= draft.rounds * 6) {
    const team = onClockTeam(next);
    setStatus(team === HUMAN ? "Your pick" : `Pick ${next}: ${teamName(team)}`);
    const card = $(`card-${team}`);
    if (card) card.classList.add("on-clock");
  }
  renderBoard();
  renderAvailable();
}

function onClockTeam(pick) {
  const round = Math.floor((pick - 1) / 6) + 1;
  const place = (pick - 1) % 6;
  return round % 2 === 1 ? place + 1 : 6 - place;
}

function onTurn(ev) {
  myTurn = true;
  tip = ev.advice;
  $("turn").hidden = false;
  $("turn-pick").textContent = `— round ${ev.round}, pick ${ev.pick}`;
  $("advice").replaceChildren(el("strong", {}, "Advisor: "), `${ev.advice.player}. ${ev.advice.reason}`);
  $("pick-error").hidden = true;
  setStatus("Your pick");
  renderAvailable();
}

async function choose(name) {
  if (!myTurn) return;
  myTurn = false;
  renderAvailable();
  try {
    await api("POST", `/v1/drafts/${draft.id}/pick`, { player: name });
  } catch (e) {
    myTurn = true;
    $("pick-error").textContent = e.message;
    $("pick-error").hidden = false;
    renderAvailable();
  }
}

function renderBoard() {
  const table = $("board");
  const head = el("tr", {}, el("th", {}, "Rd"));
  for (let t = 1; t <= 6; t++) {
    head.append(el("th", { class: t === HUMAN ? "you" : "" }, t === HUMAN ? "You" : `Team ${t}`));
  }
  const rows = [el("thead", {}, head)];
  const body = el("tbody");
  for (let r = 1; r <= draft.rounds; r++) {
    const row = el("tr", {}, el("th", {}, r));
    for (let t = 1; t <= 6; t++) {
      const p = picks.find((x) => x.round === r && x.team === t);
      row.append(el("td", { class: t === HUMAN ? "you" : "", "data-round": r, "data-team": t },
        ...(p ? [pos(p.player.position), " ", p.player.name] : [])));
    }
    body.append(row);
  }
  rows.push(body);
  table.replaceChildren(...rows);
}

function renderFilters() {
  const box = $("filters");
  box.replaceChildren();
  for (const f of ["ALL", "QB", "RB", "WR", "TE"]) {
    box.append(el("button", {
      "aria-pressed": String(f === filter), "data-filter": f,
      onclick: () => { filter = f; renderFilters(); renderAvailable(); },
    }, f === "ALL" ? "All" : f));
  }
}

function renderAvailable() {
  const table = $("available");
  const head = el("tr", {}, el("th", {}, "Player"), el("th", {}, "Pos"), el("th", {}, "Team"),
    el("th", {}, "Tier"), el("th", {}, "Pts/g"), el("th", {}, el("span", { class: "visually-hidden" }, "Pick")));
  const body = el("tbody");
  for (const p of available.filter((p) => filter === "ALL" || p.position === filter)) {
    const button = el("button", { class: "pick", "data-player": p.name, onclick: () => choose(p.name) }, "Pick");
    button.disabled = !myTurn;
    body.append(el("tr", { class: tip && myTurn && tip.player === p.name ? "tip" : "" },
      el("td", {}, p.name), el("td", {}, pos(p.position)), el("td", {}, p.team),
      el("td", {}, p.tier), el("td", {}, p.ppg), el("td", {}, button)));
  }
  table.replaceChildren(el("thead", {}, head), body);
}

function onDone(ev) {
  events.close();
  events = null;
  setStatus("Draft complete");
  $("turn").hidden = true;
  $("players").hidden = true;
  const table = $("summary-table");
  const head = el("tr", {}, el("th", {}, "Team"), el("th", {}, "Roster"), el("th", {}, "Pts/g last season"));
  const body = el("tbody");
  for (const t of ev.summary) {
    body.append(el("tr", { class: t.human ? "you" : "" },
      el("td", {}, t.name),
      el("td", {}, ...t.players.flatMap((p, i) => [i ? ", " : "", pos(p.position), " ", p.name])),
      el("td", { class: "total" }, t.points_per_game)));
  }
  table.replaceChildren(el("thead", {}, head), body);
  $("elapsed").textContent = `Host time for the whole draft, agent calls included: ${ev.elapsed_ms.toFixed(1)} ms.`;
  $("summary").hidden = false;
  $("summary").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

async function endDraft() {
  if (events) { events.close(); events = null; }
  if (draft && token) {
    try { await api("DELETE", `/v1/drafts/${draft.id}`); } catch (_) { /* already gone */ }
  }
  draft = null;
  delete document.body.dataset.draft;
}

// Closing the tab ends the draft's session: a keepalive request outlives
// the page, as a beacon does, and can say DELETE.
window.addEventListener("pagehide", () => {
  if (!draft || !token) return;
  fetch(`/v1/drafts/${draft.id}`, {
    method: "DELETE", keepalive: true, headers: { authorization: `Bearer ${token}` },
  });
});

$("start").addEventListener("click", start);
$("inspector-filter").addEventListener("change", filterCalls);
$("copy-token").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(token || "");
    $("copy-done").textContent = "Copied.";
  } catch (_) {
    $("copy-done").textContent = `Token: ${token}`;
  }
});
$("end").addEventListener("click", async () => {
  await endDraft();
  $("game").hidden = true;
  $("end").hidden = true;
  $("rounds").disabled = false;
  $("start").textContent = "Start draft";
  renderCards(lineup.teams, true);
  setStatus("Draft ended. Start another when you like.");
});
renderFilters();
loadLineup().catch((e) => setStatus(`Cannot reach the server: ${e.message}`));
