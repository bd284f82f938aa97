// launch.mjs - Debian's Chromium, headless, with a throw-away profile,
// the way every browser test here starts it.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export async function launch(options) {
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), "gk-chromium-"));
	const context = await chromium.launchPersistentContext(profile,
	    Object.assign({
		executablePath: "/usr/bin/chromium",
		headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
		    "--no-first-run", "--disable-background-networking",
		    "--disable-component-update", "--disable-sync"],
	    }, options || {}));
	// a loaded CI machine can take longer than Playwright's 30 s
	// default to upload or render; a real failure still ends the test
	context.setDefaultTimeout(90000);
	return {
		context, profile,
		close: async () => {
			await context.close();
			fs.rmSync(profile, { recursive: true, force: true });
		},
	};
}

// Collects the page's Content-Security-Policy violations into out.csp
// and, when out.errors is an array, its uncaught errors.
export async function watchPage(page, out) {
	await page.addInitScript(() => document.addEventListener(
	    "securitypolicyviolation", (e) => console.log("CSP-VIOLATION " +
	    e.violatedDirective + " " + e.blockedURI)));
	page.on("console", (m) => {
		if (m.text().startsWith("CSP-VIOLATION"))
			out.csp.push(m.text());
	});
	if (Array.isArray(out.errors))
		page.on("pageerror", (e) => out.errors.push(String(e)));
}
