// demo.mjs BASE_URL SCREENSHOT
// A person's flow on the demo page in Debian's Chromium: upload a report,
// see it listed, view it in the page. Prints one JSON line with what the page showed;
// exits non-zero on any failure.
import { launch } from "./launch.mjs";
import fs from "node:fs";
import path from "node:path";

const [base, shot] = process.argv.slice(2);
const browser = await launch();
const { context, profile } = browser;
const out = {};
try {
	const page = await context.newPage();
	await page.goto(base + "/demo");
	const report = path.join(profile, "lab-report.txt");
	fs.writeFileSync(report, "Lab report: all values normal.\n");
	await page.setInputFiles("#file", report);
	await page.click("#upload");
	await page.waitForSelector("#files li", { timeout: 15000 });
	out.status_after_upload = await page.textContent("#status");
	out.listed = await page.$$eval("#files li", (lis) =>
	    lis.map((li) => li.firstChild.textContent.trim()));
	await page.click("#files li button");
	await page.waitForSelector("#viewer pre", { timeout: 15000 });
	out.opened = (await page.textContent("#viewer pre")).trim();
	out.status_after_view = await page.textContent("#status");
	await page.screenshot({ path: shot, fullPage: true });
	console.log(JSON.stringify(out));
} finally {
	await browser.close();
}
