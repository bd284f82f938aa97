// vendor.mjs VENDOR_URL SHOT_DIR PNG PDF
// The helpdesk example (examples/vendor) in Debian's Chromium: alice
// attaches a screenshot and a PDF to ticket 42, tom (technician) views
// both in the page. Prints one JSON line with what the pages showed.
import { launch } from "./launch.mjs";
import fs from "node:fs";
import path from "node:path";

const [base, shots, png, pdf] = process.argv.slice(2);
const browser = await launch({ viewport: { width: 1100, height: 900 } });
const { context } = browser;
const out = { csp: [], failed: [] };
async function login(page, user) {
	await page.goto(base + "/");
	await page.fill("#user", user);
	await page.fill("#password", user + "-pw");
	await Promise.all([page.waitForURL("**/ticket/42"),
	    page.click("#login")]);
	await page.waitForSelector("body[data-ready='1']");
}
try {
	const page = await context.newPage();
	await page.addInitScript(() => document.addEventListener(
	    "securitypolicyviolation", (e) => console.log("CSP " +
	    e.violatedDirective + " " + e.blockedURI)));
	page.on("console", (m) => { if (m.text().startsWith("CSP "))
		out.csp.push(m.text()); });
	page.on("requestfailed", (r) => out.failed.push(r.url()));
	await login(page, "alice");
	for (const f of [png, pdf]) {
		await page.setInputFiles("#file", f);
		await page.click("#attach");
		await page.waitForFunction((n) => document.getElementById(
		    "status").textContent.includes(n), path.basename(f));
	}
	await page.waitForFunction(() =>
	    document.querySelectorAll("#files li button").length === 2);
	out.alice_status = await page.textContent("#status");
	out.alice_files = await page.$$eval("#files li button",
	    (bs) => bs.map((b) => b.dataset.key));
	out.progress = await page.$eval("#bar", (b) => b.value);
	await page.click("#files button[data-key$='.png']");
	await page.waitForSelector("#viewer img");
	await page.screenshot({ path: path.join(shots, "vendor-user.png"),
	    fullPage: true });
	await page.click("#logout");
	await page.waitForSelector("#login");

	await login(page, "tom");
	out.tom_has_attach = await page.$("#file") !== null;
	out.tom_files = await page.$$eval("#files li button",
	    (bs) => bs.map((b) => b.dataset.key));
	const pdfKey = out.tom_files.find((k) => k.endsWith(".pdf"));
	const pngKey = out.tom_files.find((k) => k.endsWith(".png"));
	await page.click(`#files button[data-key="${pngKey}"]`);
	await page.waitForSelector("#viewer img");
	out.tom_img = await page.$eval("#viewer img", (i) => ({
	    w: i.naturalWidth, h: i.naturalHeight, src: i.src.slice(0, 5),
	    size: Number(i.dataset.gkSize) }));
	await page.click(`#files button[data-key="${pdfKey}"]`);
	await page.waitForSelector("#viewer iframe");
	// the page's CSP (connect-src) forbids reading the blob back here;
	// the bytes are checked by size and type
	out.tom_pdf = await page.$eval("#viewer iframe", (f) => ({
	    src: f.src.slice(0, 5), size: Number(f.dataset.gkSize),
	    type: f.dataset.gkType }));
	await page.waitForTimeout(1500);	// let the PDF viewer paint
	await page.screenshot({ path: path.join(shots,
	    "vendor-technician.png"), fullPage: true });
	console.log(JSON.stringify(out));
} finally {
	await browser.close();
}
