// Live updates in a real browser, for tests/portal.rs: a page of the portal stays open while a
// change made on another device arrives by live sync, and shows it without a reload.
//
// node live.mjs LOGIN_URL NAME
// Signs in, opens the medications list, prints "OPEN"; then waits for a medication called NAME
// to appear in that same page (the test adds it on the other device once it reads "OPEN").

import { axe, check, finish, launch, signIn } from "./kit.mjs";

const [url, name] = process.argv.slice(2);
if (!url || !name) {
  console.error("usage: node live.mjs LOGIN_URL NAME");
  process.exit(2);
}
const browser = await launch();
const { page } = await signIn(browser, url);
await page.goto(new URL(url).origin + "/s/medications");
check(!(await page.textContent("main")).includes(name), `${name} is listed before it was added`);
// Something only this very document has: a reload would lose it.
await page.evaluate(() => {
  window.phrNotReloaded = true;
});
// The page listens once its event stream is open.
await page.waitForSelector("html[data-live=open]", { timeout: 60_000 });
console.log("OPEN");

try {
  await page.waitForFunction((n) => document.getElementById("main").textContent.includes(n), name, { timeout: 60_000 });
  console.log(`${name} appeared in the open page`);
} catch {
  check(false, `${name} did not appear in the open page within a minute`);
}
check(await page.evaluate(() => window.phrNotReloaded === true), "the page was reloaded instead of updated in place");
const note = await page.textContent("#live-note");
check(note && note.length > 0, "a screen reader is not told that the page changed");
await axe(page, "medications after a live update");
await finish(browser);
