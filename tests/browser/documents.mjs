// Documents, reports and import / export in a real browser, for tests/portal.rs: upload an IEP
// on the phone's portal, download it from the laptop's portal once live sync has brought it
// there, download each report, export the record and import a bundle; axe-core on every page,
// phone width, JavaScript off, screenshots.
//
// node documents.mjs PHONE_LOGIN LAPTOP_LOGIN IEP_FILE SAVE_AS EXPORT_AS BUNDLE SCREENSHOT_DIR
// Writes the laptop's download to SAVE_AS and the FHIR export to EXPORT_AS for the test to check.

import { mkdirSync, readFileSync } from "node:fs";
import { axe, check, finish, launch, signIn } from "./kit.mjs";

const [phoneUrl, laptopUrl, iep, saveAs, exportAs, bundle, shots, passphrase] = process.argv.slice(2);
if (!passphrase) {
  console.error("usage: node documents.mjs PHONE_LOGIN LAPTOP_LOGIN IEP_FILE SAVE_AS EXPORT_AS BUNDLE SCREENSHOT_DIR PASSPHRASE");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const browser = await launch();
const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
async function fits(page, name) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= width, `${name} scrolls sideways: ${scroll} px of content in ${width} px`);
}
/** Click what starts a download and return it. */
async function download(page, selector) {
  const [d] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  return d;
}

// The phone: from the home page to the upload form.
const { context, page } = await signIn(browser, phoneUrl);
const origin = new URL(phoneUrl).origin;
for (const href of ["/s/documents", "/reports", "/transfer"]) {
  check(await page.$(`main a[href="${href}"]`), `the home page links to ${href}`);
  check(await page.$(`nav.sections a[href="${href}"]`), `the navigation links to ${href}`);
}
await page.click("nav.sections a[href='/s/documents']");
await page.click("text=Upload a document");
await page.waitForSelector("#f-file");
check((await page.textContent("main")).includes("Files up to 100 MB"), "the upload form states the limit");
await axe(page, "upload form");
await shot(page, "upload-form");
await page.setInputFiles("#f-file", iep);
await page.fill("#f-title", "IEP 2024-25 <script>window.__phrInjected=true</script>");
await page.selectOption("#f-kind", "iep");
await page.fill("#f-date", "2024-09-01");
await page.click("button[type=submit]:has-text('Upload')");
await page.waitForSelector("p.file a", { timeout: 120_000 });
check((await page.textContent("h1")).includes("<script>"), "the title with <script> shows as text");
check(!(await page.evaluate(() => window.__phrInjected === true)), "no injected script ran");
await axe(page, "document with its file");
await shot(page, "document");
console.log("uploaded");

// The laptop: the document arrives by live sync, then its file; download it.
const laptop = await signIn(browser, laptopUrl);
const lorigin = new URL(laptopUrl).origin;
let entry = null;
for (let i = 0; i < 120 && !entry; i++) {
  await laptop.page.goto(lorigin + "/s/documents");
  entry = await laptop.page.$("ul.items a.title");
  if (!entry) await laptop.page.waitForTimeout(500);
}
check(entry, "the document reached the laptop's portal");
await entry.click();
await laptop.page.waitForSelector("p.file a");
const href = await laptop.page.getAttribute("p.file a", "href");
let status = 0;
for (let i = 0; i < 240 && status !== 200; i++) {
  status = (await laptop.page.request.head(lorigin + href)).status();
  if (status !== 200) await laptop.page.waitForTimeout(500);
}
check(status === 200, `the file reached the laptop (last answer ${status})`);
const got = await download(laptop.page, "p.file a");
check(got.suggestedFilename().endsWith(".pdf"), `the download is named ${got.suggestedFilename()}`);
await got.saveAs(saveAs);
console.log("downloaded on the laptop");

// Reports: each kind downloads.
await page.goto(origin + "/reports");
await axe(page, "reports");
await shot(page, "reports");
for (const [audience, format] of [["iep", "pdf"], ["specialist", "html"], ["insurer", "pdf"]]) {
  await page.selectOption("#f-audience", audience);
  await page.selectOption("#f-format", format);
  const report = await download(page, "button[type=submit]:has-text('Download')");
  const bytes = readFileSync(await report.path());
  if (format === "pdf") check(bytes.subarray(0, 4).toString() === "%PDF", `the ${audience} PDF starts with %PDF`);
  else check(bytes.toString().includes("Mia Lopez"), `the ${audience} HTML names the child`);
}
await page.fill("#f-since", "2999-01-01");
await page.click("button[type=submit]:has-text('Download')");
await page.waitForSelector("#e-since");
await axe(page, "refused report form");

// Import / export: export the record, import a bundle, and a file that is not one.
await page.goto(origin + "/transfer");
await axe(page, "import and export");
await shot(page, "transfer");
// Exporting asks for the passphrase again, then brings the browser back here.
await page.click("button:has-text('Download the FHIR bundle')");
await page.waitForURL((u) => u.pathname === "/confirm");
await page.fill("#f-passphrase", passphrase);
await page.click("main button[type=submit]");
await page.waitForURL((u) => u.pathname === "/transfer");
const exported = await download(page, "button:has-text('Download the FHIR bundle')");
await exported.saveAs(exportAs);
await page.setInputFiles("#f-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a bundle") });
await page.click("button[type=submit]:has-text('Import')");
await page.waitForSelector("#e-file");
check((await page.textContent("#e-file")).includes("nothing was changed"), "a bad file says so beside the field");
await axe(page, "refused import");
await page.setInputFiles("#f-file", bundle);
await page.click("button[type=submit]:has-text('Import')");
await page.waitForSelector("table");
const summary = await page.textContent("main");
check(summary.includes("Allergies") && summary.includes("Device"), `the summary shows what was and was not mapped: ${summary}`);
await axe(page, "import summary");
await shot(page, "import-summary");

// JavaScript off: the same session uploads a small file with a plain form post.
const noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1024, height: 800 } });
await noJs.addCookies(await context.cookies());
const plain = await noJs.newPage();
await plain.goto(origin + "/documents/new");
await plain.setInputFiles("#f-file", { name: "card.jpg", mimeType: "image/jpeg", buffer: Buffer.from("a photo") });
await plain.fill("#f-title", "Insurance card");
await plain.click("button[type=submit]:has-text('Upload')");
await plain.waitForSelector("p.file a");
check((await plain.textContent("h1")).includes("Insurance card"), "without JavaScript, the upload is saved");
await noJs.close();

// Phone width.
await page.setViewportSize({ width: 360, height: 780 });
for (const [path, name] of [["/documents/new", "upload-form"], ["/reports", "reports"], ["/transfer", "transfer"]]) {
  await page.goto(origin + path);
  await fits(page, `${name} at 360 px`);
  await shot(page, `phone-${name}`);
}
await finish(browser);
