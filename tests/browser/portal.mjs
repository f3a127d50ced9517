// The patient portal in a real browser (Debian's Chromium, driven by playwright-core), for
// tests/portal.rs: sign in with the one-time link, add an entry and see it listed, amend a
// note, a refused form with the error beside its field, a keyboard-only journey, axe-core on
// every page of a full and an empty record, phone width, screenshots.
//
// node portal.mjs FULL_LOGIN_URL EMPTY_LOGIN_URL SCREENSHOT_DIR
// Prints one line per step; exits non-zero naming the first thing that went wrong.

import { mkdirSync } from "node:fs";
import { axe, check, finish, launch, signIn } from "./kit.mjs";

const [fullUrl, emptyUrl, shots] = process.argv.slice(2);
if (!fullUrl || !emptyUrl || !shots) {
  console.error("usage: node portal.mjs FULL_LOGIN_URL EMPTY_LOGIN_URL SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await launch();

/** No sideways scrolling at the current width. */
async function fits(page, name) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= width, `${name} scrolls sideways: ${scroll} px of content in ${width} px`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// The full record: sign in, home.
const { context, page } = await signIn(browser, fullUrl);
const origin = new URL(fullUrl).origin;
check((await page.textContent("h1")).includes("Mia Lopez"), "the home page names the patient");
await axe(page, "home");
await shot(page, "home");
// The link is spent.
const again = await (await browser.newContext()).newPage();
const spent = await again.goto(fullUrl);
check(spent.status() === 403, `a spent sign-in link answered ${spent.status()}`);

// Every section's list, and one entry of each, through axe.
const sections = await page.$$eval("nav.sections a", (as) => as.map((a) => a.getAttribute("href")).filter((h) => h.startsWith("/s/")));
for (const href of sections) {
  await page.goto(origin + href);
  await axe(page, `list ${href}`);
  const first = await page.$("ul.items a.title");
  if (first) {
    await first.click();
    await page.waitForLoadState();
    await axe(page, `entry in ${href}`);
  }
}

// Add a medication and see it listed.
await page.goto(origin + "/s/medications");
await shot(page, "medications");
await page.click("text=Add to Medications");
await page.waitForSelector("form.stack");
await axe(page, "add medication form");
await shot(page, "add-medication");
await page.fill("#f-name", "Ibuprofen");
await page.fill("#f-dose", "100 mg");
await page.click("button[type=submit]:has-text('Save')");
await page.waitForSelector("dl.fields");
check((await page.textContent("h1")).includes("Ibuprofen"), "the new medication's page shows its name");
await shot(page, "medication");
await page.goto(origin + "/s/medications");
check((await page.textContent("main")).includes("Ibuprofen"), "the new medication is listed");

// A refused form: the engine's words beside the field at fault.
await page.goto(origin + "/s/labs/new");
await page.fill("#f-test", "Ferritin");
await page.fill("#f-date", "2024-03-01");
await page.click("button[type=submit]:has-text('Save')");
await page.waitForSelector("#e-value");
check((await page.textContent("#e-value")).includes("is required"), "a lab without a value says so beside the value");
await axe(page, "refused lab form");
await shot(page, "refused-form");

// Amend a note: the original stays, the correction below it.
await page.goto(origin + "/s/notes");
await page.click("ul.items a.title");
await page.waitForSelector("dl.fields");
const noteUrl = page.url();
const original = await page.textContent("dl.fields");
await page.click("text=Add a correction");
await page.waitForSelector("#f-text");
await axe(page, "amend form");
await page.fill("#f-text", "Arrived late; shortened session");
await page.fill("#f-reason", "clarify");
await page.click("button[type=submit]:has-text('Save')");
await page.waitForSelector(".amendment");
check(page.url() === noteUrl, `after amending, the note's page (${page.url()})`);
check((await page.textContent(".amendment")).includes("Arrived late; shortened session"), "the correction is shown");
check((await page.textContent("dl.fields")).includes("Tired after school"), `the original text is kept: ${original}`);
await shot(page, "note-amended");

// Record goal progress.
await page.goto(origin + "/s/goals");
await page.click("ul.items a.title");
await page.click("text=Record progress");
await page.fill("#f-value", "60");
await page.click("button[type=submit]:has-text('Save')");
await page.waitForSelector("dl.fields");
check((await page.textContent("main")).includes("60"), "the goal shows the progress recorded");
await axe(page, "goal with progress");

// Phone width: no sideways scrolling, screenshots; 200% zoom is the same CSS width at twice the pixels.
await page.setViewportSize({ width: 360, height: 780 });
for (const [href, name] of [["/", "home"], ["/s/medications", "medications"], ["/s/medications/new", "add-medication"], [noteUrl.replace(origin, ""), "note"]]) {
  await page.goto(origin + href);
  await fits(page, `${name} at 360 px`);
  await shot(page, `phone-${name}`);
}
const zoomed = await browser.newContext({ viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 });
await zoomed.addCookies(await context.cookies());
const zpage = await zoomed.newPage();
await zpage.goto(origin + "/s/notes");
await fits(zpage, "notes at 200% zoom");
await shot(zpage, "zoom-200-notes");

// Keyboard only: from the allergies list, Tab to "Add", fill the form, submit with Enter.
await page.setViewportSize({ width: 1024, height: 800 });
await page.goto(origin + "/s/allergies");
let reached = false;
for (let i = 0; i < 40 && !reached; i++) {
  await page.keyboard.press("Tab");
  reached = await page.evaluate(() => (document.activeElement?.textContent || "").startsWith("Add"));
}
check(reached, "Tab reaches the Add link");
await page.keyboard.press("Enter");
await page.waitForSelector("#f-substance");
let field = false;
for (let i = 0; i < 40 && !field; i++) {
  await page.keyboard.press("Tab");
  field = await page.evaluate(() => document.activeElement?.id === "f-substance");
}
check(field, "Tab reaches the first field");
await page.keyboard.type("Peanuts");
await page.keyboard.press("Enter");
await page.waitForSelector("dl.fields");
check((await page.textContent("h1")).includes("Peanuts"), "the keyboard-only allergy was saved");

// JavaScript off: the same session adds a caregivers' log entry with plain form posts.
const noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1024, height: 800 } });
await noJs.addCookies(await context.cookies());
const plain = await noJs.newPage();
await plain.goto(origin + "/s/caregiver_log/new");
await plain.fill("#f-text", "Slept well");
await plain.click("button[type=submit]:has-text('Save')");
await plain.waitForSelector("#e-date");
check((await plain.textContent("#e-date")).includes("is required"), "without JavaScript, the refusal shows beside the date");
await plain.fill("#f-date", "2024-04-01");
await plain.click("button[type=submit]:has-text('Save')");
await plain.waitForSelector("dl.fields");
check((await plain.textContent("h1")).includes("April 1, 2024") || (await plain.textContent("main")).includes("Slept well"), "without JavaScript, the entry is saved and shown");
await plain.goto(origin + "/s/caregiver_log");
check((await plain.textContent("main")).includes("Slept well"), "without JavaScript, the new entry is listed");
await noJs.close();

// A value with <script> shows as text and runs nothing.
await page.goto(origin + "/s/messages");
check((await page.textContent("main")).includes("<script>"), "a <script> value shows as text");
check(!(await page.evaluate(() => window.__phrInjected === true)), "no injected script ran");

// Sign out.
await page.goto(origin + "/");
await page.click("button:has-text('Sign out')");
await page.waitForURL(origin + "/signed-out");
await axe(page, "signed out");
const after = await page.goto(origin + "/");
check(after.status() === 401, `after signing out, the home page answered ${after.status()}`);
await axe(page, "not signed in");

// The empty record.
const empty = await signIn(browser, emptyUrl);
const eorigin = new URL(emptyUrl).origin;
await axe(empty.page, "empty home");
await shot(empty.page, "empty-home");
for (const href of ["/s/medications", "/s/notes", "/s/goals", "/s/medications/new", "/s/profile/patient"]) {
  await empty.page.goto(eorigin + href);
  await axe(empty.page, `empty ${href}`);
}
await empty.page.goto(eorigin + "/s/no-such-section");
await axe(empty.page, "not found");

await finish(browser);
