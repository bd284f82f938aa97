// console_login.mjs BASE TOKEN
// Signs in to the console at BASE (HTTPS with a test CA: certificate
// errors ignored here, the test checks the chain elsewhere) and reports
// whether the session holds. Prints one JSON line.
import { launch, watchPage } from "./launch.mjs";

const [base, token] = process.argv.slice(2);
const browser = await launch({ ignoreHTTPSErrors: true });
const out = { csp: [] };
try {
	const page = await browser.context.newPage();
	await watchPage(page, out);
	await page.goto(base + "/admin/");
	await page.waitForSelector("body[data-ready='1']");
	await page.fill("#token", token);
	await page.click("#signin");
	await page.waitForSelector("#records tbody tr");
	out.rows = await page.$$eval("#records tbody tr", (t) => t.length);
	out.cookies = (await browser.context.cookies()).map((c) => ({
	    name: c.name, secure: c.secure, httpOnly: c.httpOnly,
	    sameSite: c.sameSite }));
	out.verify = await page.evaluate(async () => {
		const s = await (await fetch("/admin/api/session")).json();
		const r = await fetch("/admin/api/verify", { method: "POST",
		    headers: { "X-CSRF-Token": s.csrf } });
		const job = (await r.json()).verify.job;
		for (;;) {	/* the check runs on its own thread: poll */
			const i = await (await fetch("/admin/api/integrity"))
			    .json();
			if (i.last_verify && i.last_verify.job >= job)
				return [r.status, i.last_verify.ok];
			await new Promise((ok) => setTimeout(ok, 200));
		}
	});
	console.log(JSON.stringify(out));
} finally {
	await browser.close();
}
