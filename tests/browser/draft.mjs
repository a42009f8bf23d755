// Plays the draft page end to end in headless Chromium.
//
//   node draft.mjs BASE_URL SCREENSHOT.png
//
// One tab plays a whole draft by clicking (a persona edited first, a
// position filter used for a pick); a phone-sized tab plays another
// (nothing scrolls sideways; its screenshot is SCREENSHOT with -phone);
// axe-core finds no serious or critical violation on either; then two
// tabs play at once and must get two different drafts; closing a tab
// must end its draft's session.
// Prints one JSON line of findings; exits non-zero on the first failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/// axe-core's serious and critical violations on the page as it is now.
async function accessibilityProblems(page) {
  await page.addScriptTag({ path: axePath });
  const { violations } = await page.evaluate(() => axe.run());
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/// Presses Tab until the focused element matches `selector` (at most
/// 400 presses); true if it got there.
async function tabTo(page, selector) {
  for (let i = 0; i < 400; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return true;
    await page.keyboard.press("Tab");
  }
  return false;
}

/// Plays a whole draft with the keyboard alone: Tab to a control, Enter.
async function playByKeyboard(page) {
  await page.goto(base);
  await page.waitForSelector(".card", { timeout: TIMEOUT });
  assert.ok(await tabTo(page, "#start"), "Start is reachable by Tab");
  await page.keyboard.press("Enter");
  let turns = 0;
  for (;;) {
    await page.waitForSelector("#turn:not([hidden]), #summary:not([hidden])", { timeout: TIMEOUT });
    if (await page.locator("#summary").isVisible()) break;
    turns += 1;
    const before = await page.locator("#feed li.pick.you").count();
    assert.ok(await tabTo(page, "#available button.pick:not([disabled])"), "a Pick button is reachable by Tab");
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => document.querySelectorAll("#feed li.pick.you").length > n,
      before, { timeout: TIMEOUT });
  }
  return { turns, picks: await page.locator("#feed li.pick").count() };
}

/// Whether anything on the page is wider than the screen (a phone
/// widens its layout to the widest content, so both are compared).
const scrollsSideways = (page) =>
  page.evaluate(() =>
    Math.max(document.documentElement.scrollWidth, window.innerWidth) > window.screen.width);

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node draft.mjs BASE_URL SCREENSHOT.png");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

const TIMEOUT = 15000;

async function sessions() {
  const r = await fetch(`${base}/v1/sessions`);
  return (await r.json()).sessions.map((s) => s.id);
}

/// Clicks through a whole draft in `page`; returns what it saw.
async function playDraft(page, { persona, filter, checks } = {}) {
  await page.goto(base);
  await page.waitForSelector(".card", { timeout: TIMEOUT });
  assert.equal(await page.locator(".card").count(), 5, "five drafter cards");
  const strategies = await page.locator(".card .strategy").allTextContents();
  assert.ok(strategies.every((s) => s.length > 10), `every card shows a strategy: ${strategies}`);
  if (persona) await page.fill("#persona-1", persona);
  await page.click("#start");
  await page.waitForFunction(() => document.body.dataset.draft, null, { timeout: TIMEOUT });
  const id = await page.evaluate(() => document.body.dataset.draft);
  // The sandbox panel: five endpoints, each card loads and names its agent.
  await page.waitForSelector("#endpoints li", { timeout: TIMEOUT });
  assert.equal(await page.locator("#endpoints li").count(), 5, "five A2A endpoints");
  assert.match(await page.locator("#sandbox-session").textContent(), new RegExp(`Session ${id}`));
  const cards = await page.locator("#endpoints a").evaluateAll((links) => links.map((a) => a.href));
  // Fetched from outside the page: its security policy lets it talk to
  // its own server only, and it does not fetch cards itself.
  const names = await Promise.all(cards.map(async (u) => (await (await page.request.get(u)).json()).name));
  assert.ok(names.every((n) => typeof n === "string" && n.length > 0), `every card loads: ${names}`);
  // Teams 1-3 pick before the human: their picks arrive live.
  await page.waitForSelector("#turn:not([hidden])", { timeout: TIMEOUT });
  const before = await page.locator("#feed li.pick").count();
  assert.equal(before, 3, "three AI picks before the human's first turn");
  let turns = 0;
  while (!(await page.locator("#summary").isVisible())) {
    if (await page.locator("#turn").isVisible()) {
      turns += 1;
      if (turns === 1 && checks) await checks(page);
      const advice = await page.locator("#advice").textContent();
      assert.match(advice, /Advisor: .+\. .+/, "the advisor gives a player and a reason");
      if (filter && turns === 1) {
        await page.click(`#filters button[data-filter="${filter}"]`);
        const shown = await page.locator("#available tbody tr td:nth-child(2)").allTextContents();
        assert.ok(shown.length > 0 && shown.every((p) => p === filter), `only ${filter}s shown`);
      }
      const button = page.locator("#available button.pick:not([disabled])").first();
      const name = await button.getAttribute("data-player");
      await button.click();
      await page.waitForSelector(`#feed li.pick.you >> text=${name}`, { timeout: TIMEOUT });
      if (turns === 1) {
        // Five AI picks have arrived by the human's first pick... plus
        // the two after it: wait for Team 5 and 6 too.
        await page.waitForFunction(() => document.querySelectorAll("#feed li.pick").length >= 6,
          null, { timeout: TIMEOUT });
      }
    } else {
      await page.waitForSelector("#turn:not([hidden]), #summary:not([hidden])", { timeout: TIMEOUT });
    }
  }
  const picks = await page.locator("#feed li.pick").count();
  const aiPicks = await page.locator("#feed li.pick:not(.you)").count();
  const cells = await page.locator("#board td[data-team]").allTextContents();
  const players = cells.map((c) => c.replace(/^(QB|RB|WR|TE) /, ""));
  const summaryRows = await page.locator("#summary-table tbody tr").count();
  const feedText = await page.locator("#feed").textContent();
  const teamTwo = await page.locator("#card-2 h2").textContent();
  return { id, turns, picks, aiPicks, players, summaryRows, feedText, teamTwo };
}

const findings = {};
try {
  // One tab, a whole draft.
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Nothing the page loads fails: no console errors, no 4xx/5xx asset.
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} ${r.url()}`));
  const one = await playDraft(page, { persona: "a salty pirate", filter: "RB" });
  assert.equal(one.turns, 3, "three human turns in three rounds");
  assert.equal(one.picks, 18);
  assert.equal(one.aiPicks, 15);
  assert.equal(one.players.length, 18);
  assert.equal(new Set(one.players).size, 18, "the board holds 18 distinct players");
  assert.equal(one.summaryRows, 6);
  assert.match(one.feedText, /matey/, "the edited persona changes Team 1's voice");
  assert.deepEqual(errors, [], "no script errors, console errors or failed loads");
  const icon = await page.evaluate(async () => (await fetch("/favicon.ico")).headers.get("content-type"));
  assert.equal(icon, "image/svg+xml", "the icon is served");
  // The page ran whole under its security policy (a blocked load or
  // inline script would have been a console error above).
  const served = await page.evaluate(async () => {
    const h = (await fetch("/")).headers;
    return { policy: h.get("content-security-policy"), sniff: h.get("x-content-type-options"), referrer: h.get("referrer-policy") };
  });
  assert.match(served.policy ?? "", /script-src 'self'/, "the page has a content security policy");
  assert.match(served.policy ?? "", /frame-ancestors 'none'/, "no page may frame it");
  assert.equal(served.sniff, "nosniff");
  assert.equal(served.referrer, "no-referrer");
  await page.screenshot({ path: screenshot, fullPage: true });
  findings.single = { id: one.id, picks: one.picks };

  // The A2A inspector: a row per engine call, each a SendMessage; the AI
  // picks among them, each answered with a completed task; a row opens
  // on the JSON-RPC request with the token masked; the filter shows one
  // agent's calls; each card counts its drafter's calls.
  const token = await page.evaluate(() => token);
  const rows = page.locator("#calls tbody tr.call");
  const calls = await rows.count();
  const purposes = await page.locator("#calls tbody tr.call td:nth-child(2)").allTextContents();
  assert.equal(purposes.filter((p) => p === "pick").length, 15, "one call per AI pick");
  assert.equal(calls, purposes.length);
  const methods = new Set(await page.locator("#calls tbody tr.call td:nth-child(3)").allTextContents());
  assert.deepEqual([...methods], ["SendMessage"]);
  const states = await page.locator("#calls tbody tr.call td:nth-child(5)").allTextContents();
  assert.ok(states.every((s) => s === "completed"), `every call completed its task: ${states}`);
  await rows.first().locator("button.show").click();
  const body = await page.locator("#calls tbody tr.call-body:not([hidden]) pre").first().textContent();
  assert.match(body, /"jsonrpc": ?"2.0"/);
  assert.match(body, /Bearer ••••/);
  assert.ok(!body.includes(token), "the token is masked");
  await page.selectOption("#inspector-filter", "2");
  const visible = await page.locator("#calls tbody tr.call:not([hidden])").allTextContents();
  assert.ok(visible.length > 0 && visible.length < calls, "the filter narrows the calls");
  assert.ok(visible.every((v) => v.startsWith(one.teamTwo)), `only Team 2's calls: ${visible}`);
  const health = await page.locator(".card .health").allTextContents();
  assert.ok(health.every((h) => /^[1-9]\d* calls · p50 [\d.]+ ms · \d+ fallbacks/.test(h)), `health: ${health}`);
  findings.inspector = { calls };
  // The token a user needs to talk to a drafter is one click away.
  await page.click("#copy-token");
  await page.waitForFunction(() => document.getElementById("copy-done").textContent !== "",
    null, { timeout: TIMEOUT });

  // Accessibility (desktop, with the human on the clock) and a phone.
  const onTheClock = async (p) => {
    assert.deepEqual(await accessibilityProblems(p), [], "no serious or critical axe violations");
  };
  // axe-core goes in as an inline script, which the page's security
  // policy refuses: the audited pages run with the policy bypassed (the
  // other drafts here run under it).
  const audit = await browser.newContext({ viewport: { width: 1440, height: 1000 }, bypassCSP: true });
  const desktop = await audit.newPage();
  await playDraft(desktop, { checks: onTheClock });
  await desktop.close();
  const phone = await (await browser.newContext({
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, bypassCSP: true,
  })).newPage();
  await phone.goto(base);
  await phone.waitForSelector(".card", { timeout: TIMEOUT });
  assert.equal(await scrollsSideways(phone), false, "the phone page does not scroll sideways");
  const small = await playDraft(phone, {
    checks: async (p) => {
      assert.equal(await scrollsSideways(p), false, "no sideways scroll while drafting");
      await onTheClock(p);
    },
  });
  assert.equal(small.picks, 18);
  assert.equal(await scrollsSideways(phone), false, "no sideways scroll at the end");
  await phone.evaluate(() => window.scrollTo(0, 0));
  await phone.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: false });
  findings.phone = { id: small.id, picks: small.picks };

  // A whole draft with the keyboard alone.
  const keys = await context.newPage();
  const byKeys = await playByKeyboard(keys);
  assert.equal(byKeys.turns, 3, "three turns by keyboard");
  assert.equal(byKeys.picks, 18);
  await keys.close();
  findings.keyboard = byKeys;

  // Figures: the page's weight, its first paint, and the first pick
  // event after Start, as this browser measured them.
  const timing = await context.newPage();
  const assets = [];
  timing.on("response", (r) => {
    if (r.url().startsWith(base) && !r.url().includes("/v1/")) assets.push(r.body().then((b) => b.length));
  });
  await timing.goto(base, { waitUntil: "load" });
  await timing.waitForSelector(".card", { timeout: TIMEOUT });
  const bytes = (await Promise.all(assets)).reduce((a, b) => a + b, 0);
  const paint = await timing.evaluate(() =>
    performance.getEntriesByType("paint").find((p) => p.name === "first-contentful-paint")?.startTime);
  const clicked = Date.now();
  await timing.click("#start");
  await timing.waitForSelector("#feed li.pick", { timeout: TIMEOUT });
  findings.figures = { page_bytes: bytes, first_paint_ms: Math.round(paint), first_pick_ms: Date.now() - clicked };
  await timing.close();

  // Two tabs at once: two independent drafts.
  const [a, b] = [await context.newPage(), await context.newPage()];
  const [ra, rb] = await Promise.all([playDraft(a), playDraft(b)]);
  assert.notEqual(ra.id, rb.id, "two tabs, two drafts");
  for (const r of [ra, rb]) {
    assert.equal(r.picks, 18);
    assert.equal(new Set(r.players).size, 18);
  }
  const live = await sessions();
  assert.ok(live.includes(ra.id) && live.includes(rb.id), "both drafts' sessions are live");

  // Closing a tab ends its draft; the other is untouched.
  await a.close({ runBeforeUnload: true });
  const deadline = Date.now() + TIMEOUT;
  while ((await sessions()).includes(ra.id) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = await sessions();
  assert.ok(!after.includes(ra.id), "closing the tab ended its session");
  assert.ok(after.includes(rb.id), "the other tab's draft lives on");
  findings.tabs = { a: ra.id, b: rb.id, closed: true };

  // A draft that vanishes mid-game (its server restarted, say) is
  // explained on the page, not left frozen.
  const lost = await context.newPage();
  await lost.goto(base);
  await lost.waitForSelector(".card", { timeout: TIMEOUT });
  await lost.click("#start");
  await lost.waitForFunction(() => document.body.dataset.draft, null, { timeout: TIMEOUT });
  const lostId = await lost.evaluate(() => document.body.dataset.draft);
  const deleted = await fetch(`${base}/v1/sessions/${lostId}`, { method: "DELETE" });
  assert.equal(deleted.status, 204);
  await lost.waitForFunction(() => document.body.dataset.lost === "true", null, { timeout: TIMEOUT });
  assert.match(await lost.locator("#status").textContent(), /draft is gone.*Start a new draft/);
  findings.lost = lostId;
  console.log(JSON.stringify({ ok: true, ...findings }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), ...findings }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
