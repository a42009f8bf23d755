// The draft page when things go wrong, in headless Chromium.
//
//   node errors.mjs full BASE_URL      a server with no room: Start says so
//
// Prints one JSON line; exits non-zero on failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [mode, base] = process.argv.slice(2);
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
  assert.equal(mode, "full", "the one mode");
  await page.waitForFunction(() => /server is full/.test(document.getElementById("status").textContent),
    null, { timeout: TIMEOUT });
  assert.match(await status(page), /Could not start: The server is full right now\. Try again in a minute\./);
  assert.equal(await page.locator("#start").isDisabled(), false, "Start can be pressed again");
  console.log(JSON.stringify({ ok: true, mode, status: await status(page) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, mode, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
