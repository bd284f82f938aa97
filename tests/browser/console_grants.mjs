// console_grants.mjs CONFIG.json
// The console's Grants tab in Debian's Chromium: sign in, create a grant
// from the form (the secret shown once), hand it to the caller (which
// uses it with boto3 against the S3 endpoint), then, when the caller
// touches cfg.revokeFlag, revoke it from the page; collects the table,
// every API response body the page received afterwards, and CSP
// violations. Prints one JSON line.
import { launch, watchPage } from "./launch.mjs";
import fs from "node:fs";
import path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const browser = await launch({ timezoneId: "UTC",
    viewport: { width: 1280, height: 900 } });
const { context } = browser;
const out = { csp: [], errors: [], later_bodies: [] };
const shot = (p, name) => p.screenshot({ path: path.join(cfg.shots, name),
    fullPage: true });

async function table(page) {
	return await page.$$eval("#grants tbody tr[data-id]", (trs) =>
	    trs.map((tr) => ({ id: tr.dataset.id, state: tr.dataset.state,
	    cells: [...tr.cells].map((c) => c.textContent) })));
}

async function waitFile(f, ms) {
	const t0 = Date.now();
	while (!fs.existsSync(f)) {
		if (Date.now() - t0 > ms)
			throw new Error("no " + f);
		await new Promise((ok) => setTimeout(ok, 100));
	}
}

try {
	const page = await context.newPage();
	await watchPage(page, out);
	page.on("dialog", (d) => d.accept());

	await page.goto(cfg.base + "/admin/");
	await page.waitForSelector("body[data-ready='1']");
	await page.fill("#token", cfg.adminToken);
	await page.click("#signin");
	await page.waitForSelector("#records tbody tr");
	await page.click(".tab[data-tab='grants']");
	await page.waitForSelector("#grants tbody tr");
	out.before = await table(page);

	// a bad form: the gatekeeper's message on the page
	await page.fill("#grant-form [name=name]", "bad");
	await page.fill("#grant-form [name=expires]", "soon");
	await page.click("#grant-create");
	await page.waitForFunction(() => document.getElementById(
	    "grant-err").textContent !== "");
	out.bad_expires = await page.textContent("#grant-err");
	// refusals of the grant itself name the form's fields too
	const refused = async (field, value) => {
		await page.fill(`#grant-form [name=${field}]`, value);
		await page.click("#grant-create");
		await page.waitForFunction((before) => document.getElementById(
		    "grant-err").textContent !== before,
		    await page.textContent("#grant-err"));
		const msg = await page.textContent("#grant-err");
		await page.fill(`#grant-form [name=${field}]`, "");
		return msg;
	};
	await page.fill("#grant-form [name=expires]", "");
	out.bad_ip = await refused("ip", "10.0.0.1/8");
	out.bad_prefix = await refused("prefix", ".gatekeeper-mpu/x/");

	// create: the form as a customer fills it in
	await page.fill("#grant-form [name=name]", cfg.name);
	await page.fill("#grant-form [name=prefix]", cfg.prefix);
	await page.check("#grant-form [value=put]");
	await page.fill("#grant-form [name=expires]", "30d");
	await page.fill("#grant-form [name=ip]", "127.0.0.0/8, ::1/128");
	await page.fill("#grant-form [name=rate]", "50");
	const [resp] = await Promise.all([page.waitForResponse((r) =>
	    r.url().includes("/admin/api/grants?") &&
	    r.request().method() === "POST"), page.click("#grant-create")]);
	out.create_status = resp.status();
	await page.waitForSelector("#grant-new:not([hidden])");
	out.shown = { id: await page.textContent("#new-id"),
	    akid: await page.textContent("#new-akid"),
	    secret: await page.textContent("#new-secret") };
	await page.waitForSelector(`#grants tbody tr[data-id='${out.shown.id}']`);
	out.after_create = await table(page);
	// the screenshot holds the table and the form, not the secret
	await page.evaluate(() => { document.getElementById("new-secret")
	    .textContent = "(shown once; blanked for the screenshot)"; });
	await shot(page, "console-grants.png");
	await page.click("#grant-done");
	out.secret_gone = await page.textContent("#new-secret");

	// every response from here on must not hold the secret
	page.on("response", async (r) => {
		try { out.later_bodies.push(await r.text()); } catch (e) { /* */ }
	});
	fs.writeFileSync(cfg.createdFile, JSON.stringify(out.shown));
	await waitFile(cfg.revokeFlag, 120000);

	// revoke from the page
	await page.click(".tab[data-tab='audit']");
	await page.click(".tab[data-tab='grants']");
	await page.waitForSelector(`#grants tbody tr[data-id='${out.shown.id}']`);
	const [rv] = await Promise.all([page.waitForResponse((r) =>
	    r.url().includes("/admin/api/grants/revoke")),
	    page.click(`#grants button.revoke[data-id='${out.shown.id}']`)]);
	out.revoke_status = rv.status();
	await page.waitForSelector(
	    `#grants tbody tr[data-id='${out.shown.id}'][data-state='revoked']`);
	out.after_revoke = await table(page);
	// the audit table shows both changes
	await page.click(".tab[data-tab='audit']");
	await page.fill("#filters [name=kid]", out.shown.id);
	await Promise.all([page.waitForResponse((r) =>
	    r.url().includes("/admin/audit?")), page.click("#search")]);
	await page.waitForTimeout(150);
	out.audit_ops = await page.$$eval("#records tbody tr[data-id]",
	    (trs) => trs.map((tr) => tr.cells[4].textContent));
	await page.waitForTimeout(300);
	console.log(JSON.stringify(out));
} catch (e) {
	console.error("partial: " + JSON.stringify(out).slice(0, 3000));
	throw e;
} finally {
	await browser.close();
}
