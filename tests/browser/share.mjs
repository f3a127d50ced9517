// Sharing, devices, the activity log, the passphrase typed again and the idle warning in a real
// browser (Debian's Chromium through playwright-core), for tests/portal.rs: axe-core on every
// page, screenshots, the QR code drawn, a phone-sized screen.
//
// node share.mjs LOGIN_URL PASSPHRASE SCREENSHOT_DIR
// Prints one line per step; exits non-zero naming what went wrong.

import { mkdirSync } from "node:fs";
import { axe, check, finish, launch, signIn } from "./kit.mjs";

const [loginUrl, passphrase, shots] = process.argv.slice(2);
if (!loginUrl || !passphrase || !shots) {
  console.error("usage: node share.mjs LOGIN_URL PASSPHRASE SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const browser = await launch();
const { page } = await signIn(browser, loginUrl);
const origin = new URL(loginUrl).origin;
const path = () => new URL(page.url()).pathname;

async function look(name) {
  await axe(page, name);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// Sharing asks for the passphrase first; a wrong one is said beside the field.
await page.goto(origin + "/sharing");
await look("sharing");
await page.click("text=Share with someone");
await page.waitForURL((u) => u.pathname === "/confirm");
await look("confirm-passphrase");
await page.fill("#f-passphrase", "not the passphrase");
await page.click("main button[type=submit]");
await page.waitForSelector("#e-passphrase");
check((await page.textContent("#e-passphrase")).includes("not the record's passphrase"), "a wrong passphrase is said beside the field");
await look("confirm-passphrase-wrong");
await page.fill("#f-passphrase", passphrase);
await page.click("main button[type=submit]");
await page.waitForURL((u) => u.pathname === "/sharing/new");
await look("share-form");

// A caregiver share without insurance: its QR code and text.
await page.fill("#f-label", "Grandma");
await page.selectOption("#f-preset", "caregiver");
await page.selectOption("#f-right-documents", "none");
await page.click("main button[type=submit]");
await page.waitForURL((u) => u.pathname.startsWith("/offers/"));
// The page may arrive by htmx (no load event): wait for the image itself to finish loading.
const drawn = await page
  .waitForFunction(() => {
    const img = document.querySelector("img.qr");
    return img !== null && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 15000 })
  .then(() => true, () => false);
check(drawn, "the QR code is drawn");
check((await page.textContent("pre.ticket")).startsWith("PHRPAIR"), "the ticket's text is shown");
await look("share-offer");
await page.setViewportSize({ width: 360, height: 740 });
const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
check(scroll <= width, `the share's page scrolls sideways at 360 px: ${scroll} px`);
await page.screenshot({ path: `${shots}/share-offer-phone.png`, fullPage: true });
await page.setViewportSize({ width: 1024, height: 800 });

// Devices: adding one makes a pairing code (the passphrase is still confirmed).
await page.goto(origin + "/devices");
await look("devices");
await page.click("text=Add a device");
await page.waitForURL((u) => u.pathname === "/devices/add");
await look("device-add");
await page.click("text=Make a code");
await page.waitForURL((u) => u.pathname.startsWith("/offers/"));
await look("device-offer");

// The activity log, filtered.
await page.goto(origin + "/activity");
await look("activity");
await page.selectOption("#f-what", "grant");
await page.click("text=Show");
await page.waitForURL((u) => u.search.includes("what=grant"));
await axe(page, "activity filtered");

// The idle warning: the page says when the session ends; shortly before, a banner counts down.
await page.clock.install();
await page.goto(origin + "/");
check((await page.textContent("#idle")).includes("you will be signed out"), "the page says when the session ends");
check(await page.isHidden("#idle-warning"), "no warning right after a request");
const idle = Number(await page.getAttribute("#idle", "data-idle-seconds"));
await page.clock.fastForward((idle - 60) * 1000);
await page.waitForSelector("#idle-warning", { state: "visible" });
check((await page.textContent("#idle-warning")).includes("You will be signed out in"), "the warning counts down");
await look("idle-warning");
console.log(`done at ${path()}`);
await finish(browser);
