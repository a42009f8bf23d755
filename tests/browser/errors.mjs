// The draft page when things go wrong, in headless Chromium.
//
//   node errors.mjs full BASE_URL        a server with no room: Start says so
//   node errors.mjs restart SERVER AGENTS  starts the server binary SERVER
//                                        (gateway mode, AGENTS its agents
//                                        directory), starts a draft, restarts
//                                        the server on the same address, and
//                                        expects the page to say the draft
//                                        is gone
//
// Prints one JSON line; exits non-zero on failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";

const [mode, ...args] = process.argv.slice(2);

/** A free loopback port. */
const freePort = () => new Promise((ok) => {
  const probe = net.createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => ok(port));
  });
});

/** Starts the server binary on `port`; resolves once it listens. */
const startServer = (bin, agents, port) => new Promise((ok, fail) => {
  const child = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--mode", "gateway", "--agents-dir", agents],
    { stdio: ["ignore", "pipe", "inherit"] });
  let seen = "";
  child.stdout.on("data", (d) => {
    seen += d;
    if (seen.includes("listening on http://")) ok(child);
  });
  child.on("exit", (code) => fail(new Error(`the server exited (${code}): ${seen.slice(-500)}`)));
});
const stop = (child) => new Promise((ok) => { child.once("exit", ok); child.kill("SIGKILL"); });

let server = null;
let base = args[0];
if (mode === "restart") {
  const port = await freePort();
  server = await startServer(args[0], args[1], port);
  base = `http://127.0.0.1:${port}`;
}
const TIMEOUT = 30000;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const status = (page) => page.locator("#status").textContent();
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(base);
  await page.waitForSelector(".card", { timeout: TIMEOUT });
  await page.click("#start");
  if (mode === "full") {
    await page.waitForFunction(() => /server is full/.test(document.getElementById("status").textContent),
      null, { timeout: TIMEOUT });
    assert.match(await status(page), /Could not start: The server is full right now\. Try again in a minute\./);
    assert.equal(await page.locator("#start").isDisabled(), false, "Start can be pressed again");
  } else {
    await page.waitForFunction(() => document.body.dataset.draft, null, { timeout: TIMEOUT });
    const port = new URL(base).port;
    await stop(server);
    server = await startServer(args[0], args[1], Number(port));
    await page.waitForFunction(() => document.body.dataset.lost === "true", null, { timeout: TIMEOUT });
    assert.match(await status(page), /This draft is gone: the server restarted/);
  }
  console.log(JSON.stringify({ ok: true, mode, status: await status(page) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, mode, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
  if (server) await stop(server);
}
