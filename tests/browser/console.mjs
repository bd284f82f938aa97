// console.mjs CONFIG.json
// The customer's console (/admin/) in Debian's Chromium: sign in, audit
// filters, paging, live tail, CSV/JSON export, charts (the drawn SVG
// elements' data), verify now on a clean and a tampered log, the policy
// view, reload and tester, sign out; every Content-Security-Policy
// violation is collected. Prints one JSON line with what the page showed.
import { launch, watchPage } from "./launch.mjs";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const browser = await launch({ acceptDownloads: true, timezoneId: "UTC",
    viewport: { width: 1280, height: 900 } });
const { context, profile } = browser;
const out = { csp: [], errors: [] };
const shot = (p, name) => p.screenshot({ path: path.join(cfg.shots, name),
    fullPage: true });

function v1url(root, p, op) {
	const expires = String(Math.floor(Date.now() / 1000) + 300);
	const hmac = crypto.createHmac("sha256", cfg.v1Key)
	    .update(root + p.split("/")[1] + op + expires).digest("hex");
	return `${cfg.base}/${root}?` + new URLSearchParams({ path: p,
	    operation: op, expires, hmac });
}

async function rows(page) {
	return await page.$$eval("#records tbody tr", (trs) => trs.map((tr) => {
		const td = tr.querySelectorAll("td");
		return { id: Number(tr.dataset.id), op: td[4].textContent,
		    key: td[5].textContent, status: Number(td[6].textContent),
		    decision: td[7].textContent, fresh:
		    tr.classList.contains("fresh") };
	}));
}

const auditResponse = (page) => page.waitForResponse((r) =>
    r.url().includes("/admin/audit?"));

async function searchWith(page, fields) {
	await Promise.all([auditResponse(page), page.click("#clear")]);
	for (const [k, v] of Object.entries(fields)) {
		const sel = `#filters [name="${k}"]`;
		if (await page.$eval(sel, (e) => e.tagName) === "SELECT")
			await page.selectOption(sel, v);
		else
			await page.fill(sel, v);
	}
	await Promise.all([auditResponse(page), page.click("#search")]);
	await page.waitForTimeout(150);
	return await rows(page);
}

try {
	const page = await context.newPage();
	await watchPage(page, out);

	// no session: the sign-in form, and the API refuses
	await page.goto(cfg.base + "/admin/");
	await page.waitForSelector("body[data-ready='1']");
	out.login_visible = await page.isVisible("#login");
	out.app_hidden = await page.isHidden("#app");
	out.api_without = await page.evaluate(async () =>
	    (await fetch("/admin/audit")).status);
	await page.fill("#token", "not-the-token-" + "x".repeat(20));
	await page.click("#signin");
	await page.waitForFunction(() => document.getElementById(
	    "login-err").textContent !== "");
	out.wrong_token = await page.textContent("#login-err");

	// sign in
	await page.fill("#token", cfg.adminToken);
	await page.click("#signin");
	await page.waitForSelector("#records tbody tr");
	out.cookies = (await context.cookies()).map((c) => ({
	    name: c.name, secure: c.secure, httpOnly: c.httpOnly,
	    sameSite: c.sameSite, path: c.path }));
	out.doc_cookie = await page.evaluate(() => document.cookie);
	await shot(page, "console-audit.png");

	// filters
	out.f_deny = await searchWith(page, { decision: "deny", limit: "500" });
	out.f_status = await searchWith(page, { status: "401", limit: "500" });
	out.f_prefix = await searchWith(page, { path_prefix: "/beta/",
	    limit: "500" });
	out.f_sub = await searchWith(page, { sub: "user-7", limit: "500" });
	out.f_ip = await searchWith(page, { ip: "127.0.0.0/8", op: "GET_Bucket",
	    decision: "allow", limit: "500" });
	out.f_reqid = await searchWith(page, { request_id: cfg.requestId });
	out.f_range = await searchWith(page, { from: cfg.rangeFrom,
	    to: cfg.rangeTo, limit: "500" });
	out.f_kid = await searchWith(page, { kid: cfg.kid, limit: "500" });
	out.f_country = await searchWith(page, { country: "US" });
	out.f_country_status = await page.textContent("#audit-status");
	out.f_bad_ip = await searchWith(page, { ip: "not-an-ip" });
	out.f_bad_ip_status = await page.textContent("#audit-status");

	// paging: 25 a page
	out.page1 = await searchWith(page, { limit: "25" });
	out.older_enabled = await page.isEnabled("#older");
	await Promise.all([page.waitForResponse((r) =>
	    r.url().includes("cursor=")), page.click("#older")]);
	await page.waitForTimeout(100);
	out.page2 = await rows(page);
	out.page2_status = await page.textContent("#audit-status");
	await Promise.all([auditResponse(page), page.click("#newest")]);
	await page.waitForTimeout(100);
	out.back_to_1 = (await rows(page)).map((r) => r.id);

	// live tail: a request made now shows up on its own
	await searchWith(page, { limit: "25" });
	await page.check("#tail");
	await page.waitForTimeout(300);
	const tag = "tail-" + crypto.randomBytes(4).toString("hex");
	const r = await fetch(v1url("app", `/${tag}/`, "GET_Bucket"),
	    { headers: { Origin: cfg.origin } });
	out.tail_request_status = r.status;
	await page.waitForFunction((t) => [...document.querySelectorAll(
	    "#records tbody tr.fresh td")].some((td) =>
	    td.textContent.includes(t)), tag, { timeout: 15000 });
	out.tail_rows = (await rows(page)).filter((x) => x.key.includes(tag));
	await page.uncheck("#tail");

	// export of the current filter
	await searchWith(page, { decision: "deny", limit: "25" });
	for (const fmt of ["csv", "json"]) {
		const [dl] = await Promise.all([page.waitForEvent("download"),
		    page.click("#export-" + fmt)]);
		const f = path.join(profile, "export." + fmt);
		await dl.saveAs(f);
		out["export_" + fmt] = { name: dl.suggestedFilename(),
		    text: fs.readFileSync(f, "utf8") };
	}

	// charts: the drawn rectangles carry the numbers they show
	out.charts_from_us = Date.now() * 1000;
	await page.click(".tab[data-tab='charts']");
	await page.waitForSelector("body[data-charts='1']");
	out.charts_to_us = Date.now() * 1000;
	out.chart_time = await page.$$eval("#chart-time rect", (rs) => rs.map(
	    (r) => ({ d: r.dataset.decision, n: Number(r.dataset.n),
	    h: Number(r.getAttribute("height")) })));
	for (const id of ["ips", "countries", "denials"])
		out["chart_" + id] = await page.$$eval(`#chart-${id} rect`,
		    (rs) => rs.map((r) => ({ key: r.dataset.key,
		    n: Number(r.dataset.n),
		    w: Number(r.getAttribute("width")) })));
	await shot(page, "console-charts.png");

	// integrity: verify now, clean, then with one record changed
	await page.click(".tab[data-tab='integrity']");
	await page.waitForSelector("#chain-instance");
	out.instance = await page.textContent("#chain-instance");
	out.checkpoint = await page.textContent("#chain-cp");
	out.checkpoint_time = await page.textContent("#chain-cp-time");
	await page.click("#verify");
	await page.waitForSelector("#verdict");
	out.verify_clean = await page.textContent("#verdict");
	execFileSync("sqlite3", [cfg.auditDb,
	    "UPDATE audit SET status = 299 WHERE id = 3"]);
	await page.click("#verify");
	await page.waitForFunction(() => document.getElementById("verdict") &&
	    document.getElementById("verdict").textContent === "NOT OK");
	out.verify_tampered = await page.textContent("#verdict");
	out.problems = await page.$$eval("#problems li",
	    (ls) => ls.map((l) => l.textContent));
	await shot(page, "console-integrity.png");

	// policy: the effective settings, the tester, a reload
	await page.click(".tab[data-tab='policy']");
	await page.waitForSelector("#settings tbody tr");
	out.settings = Object.fromEntries(await page.$$eval("#settings tbody tr",
	    (trs) => trs.map((tr) => [tr.dataset.name,
	    tr.cells[1].textContent])));
	out.tests = [];
	for (const t of cfg.tests) {
		await page.fill("#tester [name=ip]", t.ip);
		await page.fill("#tester [name=origin]", t.origin);
		await page.selectOption("#tester [name=op]", t.op);
		await page.click("#test");
		await page.waitForSelector("#test-verdict");
		out.tests.push({ decision: await page.getAttribute(
		    "#test-verdict", "data-decision"),
		    rule: await page.textContent("#test-rule"),
		    verdict: await page.textContent("#test-verdict") });
		await page.evaluate(() => document.getElementById(
		    "test-result").textContent = "");
	}
	const ini = fs.readFileSync(cfg.config, "utf8");
	fs.writeFileSync(cfg.config, ini.replace(/^ip_deny = .*$/m,
	    "ip_deny = " + cfg.newDeny));
	await page.click("#reload");
	await page.waitForFunction(() => !document.getElementById(
	    "reload-msg").textContent.includes("…"));
	out.reload_msg = await page.textContent("#reload-msg");
	await page.waitForSelector("#changes");
	out.changes = await page.$$eval("#changes tbody tr", (trs) => trs.map(
	    (tr) => [...tr.cells].map((c) => c.textContent)));
	await page.fill("#tester [name=ip]", cfg.newDenyIp);
	await page.fill("#tester [name=origin]", cfg.origin);
	await page.selectOption("#tester [name=op]", "GET_Object");
	await page.click("#test");
	await page.waitForSelector("#test-verdict");
	out.after_reload = await page.textContent("#test-rule");
	await shot(page, "console-policy.png");

	// sign out: the cookie no longer opens anything
	await page.click("#logout");
	await page.waitForSelector("#login:not([hidden])");
	out.after_logout = await page.evaluate(async () =>
	    (await fetch("/admin/api/session")).status);

	// outside the admin CIDRs the console does not open at all
	if (cfg.outside) {
		const resp = await page.goto(cfg.outside + "/admin/");
		out.outside_status = resp.status();
		out.outside_body = await resp.text();
	}
	console.log(JSON.stringify(out));
} catch (e) {
	console.error("partial: " + JSON.stringify(out).slice(0, 3000));
	throw e;
} finally {
	await browser.close();
}
