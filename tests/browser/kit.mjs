// What the portal's browser journeys share (tests/browser/portal.mjs, live.mjs): Debian's
// Chromium through playwright-core, a list of failed checks, axe-core on a page, signing in.

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Headless Chromium (PHR_CHROMIUM, or Debian's). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.PHR_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** What went wrong, one line each. */
export const failures = [];
export function check(ok, what) {
  if (!ok) {
    failures.push(what);
    console.log(`FAIL ${what}`);
  }
}

/** axe-core on the page: every WCAG 2.0/2.1/2.2 A and AA rule. The portal's
 * Content-Security-Policy forbids inline scripts, so axe goes in through the DevTools
 * protocol (page.evaluate), which the policy does not govern. */
export async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"] } })
  );
  for (const v of result.violations) {
    check(false, `axe on ${name}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }
  console.log(`axe ${name}: ${result.violations.length} violation(s), ${result.passes.length} rule(s) passed`);
}

/** Open a one-time sign-in link in a fresh context; the page lands on the home page. */
export async function signIn(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
  const page = await context.newPage();
  // Anything the Content-Security-Policy had to block (an inline style or script of ours) is a bug.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) check(false, `console error on ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => check(false, `script error on ${page.url()}: ${e.message}`));
  const reply = await page.goto(url);
  check(reply && reply.ok(), `signing in with ${url} answered ${reply && reply.status()}`);
  check(new URL(page.url()).pathname === "/", `signing in lands on ${page.url()}`);
  return { context, page };
}

/** Close the browser and exit: non-zero, listing them, if any check failed. */
export async function finish(browser) {
  await browser.close();
  if (failures.length > 0) {
    console.error(`${failures.length} check(s) failed:\n${failures.join("\n")}`);
    process.exit(1);
  }
  console.log("all browser checks passed");
}
