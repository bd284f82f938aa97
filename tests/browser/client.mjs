// client.mjs CONFIG.json
// gatekeeper.js in Debian's Chromium, from a page of another origin (a
// stand-in vendor page served here on config.pagePort), against a real
// gatekeeper. Tokens are signed here with node:crypto (Ed25519, kid
// config.kid), v1 URLs with the v1 secret: the browser only gets them
// through the token/sign callbacks, as from a vendor's server.
// Prints one JSON line with what the page saw; exits non-zero on failure.
import { launch } from "./launch.mjs";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const vendorKey = crypto.createPrivateKey(cfg.privatePem);
const b64u = (b) => Buffer.from(b).toString("base64url");

function v2token(req) {
	const now = Math.floor(Date.now() / 1000);
	const claims = { aud: cfg.aud, sub: "browser-test", op: req.op,
	    iat: now, exp: now + 300 };
	if (req.key !== undefined)
		claims.key = req.key;
	else
		claims.prefix = req.prefix;
	const si = b64u(JSON.stringify({ alg: "EdDSA", kid: cfg.kid })) + "." +
	    b64u(JSON.stringify(claims));
	return si + "." + b64u(crypto.sign(null, Buffer.from(si), vendorKey));
}

function v1url(req) {
	const root = req.operation === "PUT_Object" ? "app" : "uploads";
	const expires = String(Math.floor(Date.now() / 1000) + 300);
	const sub = req.path.split("/")[1];
	const hmac = crypto.createHmac("sha256", cfg.v1Key)
	    .update(root + sub + req.operation + expires).digest("hex");
	const q = new URLSearchParams({ path: req.path,
	    operation: req.operation, expires, hmac });
	return cfg.gk + "/" + root + "?" + q;
}

const page_html = `<!doctype html><meta charset="utf-8"><title>vendor</title>
<input type="file" id="small"><input type="file" id="big">
<div id="v-pdf"></div><div id="v-img"></div><div id="v-txt"></div>
<div id="v1view"></div>
<script type="module">
import { Gatekeeper, GatekeeperError } from "${cfg.gk}/gatekeeper.js";
window.gkmod = { Gatekeeper, GatekeeperError };
document.title = "ready";
</script>`;
const server = http.createServer((req, res) => {
	res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
	res.end(page_html);
});
await new Promise((r) => server.listen(cfg.pagePort, "127.0.0.1", r));

const browser = await launch();
const { context } = browser;
const out = {};
try {
	const page = await context.newPage();
	const seen = [];
	page.on("request", (r) => seen.push(r.method() + " " + r.url()));
	await page.exposeFunction("v2token", v2token);
	await page.exposeFunction("v1url", v1url);
	await page.goto(`http://127.0.0.1:${cfg.pagePort}/`);
	await page.waitForFunction(() => document.title === "ready");

	// the classic build defines the same classes as globals
	out.classic = await page.evaluate(async (gk) => {
		const s = document.createElement("script");
		s.src = gk + "/gatekeeper.classic.js";
		await new Promise((ok, ko) => {
			s.onload = ok; s.onerror = ko; document.head.append(s);
		});
		const g = new window.Gatekeeper({ token: () => "x" });
		return { protocol: g.protocol,
		    err: typeof window.GatekeeperError };
	}, cfg.gk);

	await page.setInputFiles("#small", cfg.files.small);
	await page.setInputFiles("#big", cfg.files.big);

	// v2: a small upload through the streamed PUT, with progress
	out.v2 = await page.evaluate(async (gkBase) => {
		const { Gatekeeper, GatekeeperError } = window.gkmod;
		const gk = new Gatekeeper({ url: gkBase, token: window.v2token });
		const r = {};
		const small = document.getElementById("small").files[0];
		const big = document.getElementById("big").files[0];

		const ev = [];
		r.put = await gk.upload(small, { key: "t/note.txt",
		    onProgress: (p) => ev.push(p) });
		r.putEvents = ev.length;
		r.putLast = ev[ev.length - 1];

		// a big upload: progress events on the way, the final one whole
		// (4 times the big file in one Blob, no copy: the browser reports
		// progress at most every 50 ms, and 48 MiB on loopback can be
		// sent in less)
		const bev = [];
		r.big = await gk.upload(new Blob(Array(4).fill(big)), {
		    key: "t/big.bin",
		    onProgress: (p) => bev.push(p) });
		r.bigEvents = bev.length;
		r.bigFirst = bev[0];
		r.bigLast = bev[bev.length - 1];

		// the same through the POST form
		const fev = [];
		r.form = await gk.upload(small, { key: "t/form.txt",
		    upload: "form", onProgress: (p) => fev.push(p) });
		r.formEvents = fev.length;

		// cancel a big upload after its first progress event: 8 times
		// the big file (one Blob over the same bytes, no copy), so that
		// on loopback the body is still being sent when the browser's
		// first progress event (at most every 50 ms) arrives
		const huge = new Blob(Array(8).fill(big));
		const ctl = new AbortController();
		const cev = [];
		try {
			await gk.upload(huge, { key: "t/cancelled.bin",
			    signal: ctl.signal, onProgress: (p) => {
				cev.push(p);
				ctl.abort();
			    } });
			r.cancel = "not cancelled";
		} catch (e) {
			r.cancel = { name: e.name, kind: e.kind,
			    isGkError: e instanceof GatekeeperError,
			    loaded: cev[0] ? cev[0].loaded : null,
			    total: huge.size };
		}

		// paging: limit 2 over the folder
		r.list = [];
		for await (const it of gk.list("t/", { limit: 2 }))
			r.list.push([it.key, it.size]);

		// an error carries the gatekeeper's status and message
		try {
			await gk.view("nothere/x.txt", document.getElementById("v1view"));
		} catch (e) {
			r.notFound = { name: e.name, status: e.status,
			    message: e.message, requestId: e.requestId,
			    isGkError: e instanceof GatekeeperError };
		}
		return r;
	}, cfg.gk);

	// views: a PDF, an image and text, in the page
	for (const [key, el] of [["v/doc.pdf", "v-pdf"], ["v/pic.png", "v-img"],
	    ["v/readme.txt", "v-txt"]]) {
		out[el] = await page.evaluate(async ([gkBase, key, el]) => {
			const { Gatekeeper } = window.gkmod;
			const gk = new Gatekeeper({ url: gkBase,
			    token: window.v2token });
			const node = await gk.view(key,
			    document.getElementById(el));
			const r = { tag: node.tagName, type: node.dataset.gkType,
			    size: Number(node.dataset.gkSize) };
			if (node.tagName === "IMG")
				Object.assign(r, { w: node.naturalWidth,
				    h: node.naturalHeight });
			if (node.tagName === "PRE")
				r.text = node.textContent;
			if (node.tagName === "IFRAME") {
				const b = await (await fetch(node.src)).arrayBuffer();
				r.head = new TextDecoder().decode(
				    new Uint8Array(b).slice(0, 5));
				r.blobSize = b.byteLength;
				r.src = node.src.slice(0, 5);
			}
			return r;
		}, [cfg.gk, key, el]);
	}

	// open(): a new tab on the object, from a click
	await page.evaluate((gkBase) => {
		const { Gatekeeper } = window.gkmod;
		const gk = new Gatekeeper({ url: gkBase, token: window.v2token });
		const b = document.createElement("button");
		b.id = "open";
		b.textContent = "open";
		b.onclick = () => gk.open("v/readme.txt");
		document.body.append(b);
	}, cfg.gk);
	const [tab] = await Promise.all([context.waitForEvent("page"),
	    page.click("#open")]);
	await tab.waitForURL((u) => u.pathname.startsWith("/_data/"));
	out.opened = { path: new URL(tab.url()).pathname,
	    text: await tab.textContent("body") };
	await tab.close();

	// v1: upload, list, view with signed URLs
	out.v1 = await page.evaluate(async (gkBase) => {
		const { Gatekeeper } = window.gkmod;
		const gk = new Gatekeeper({ url: gkBase, sign: window.v1url });
		const small = document.getElementById("small").files[0];
		const ev = [];
		const r = {};
		r.put = await gk.upload(small, { key: "/legacy/note.txt",
		    onProgress: (p) => ev.push(p) });
		r.putEvents = ev.length;
		r.list = [];
		for await (const it of gk.list("/legacy/"))
			r.list.push(it.key);
		const node = await gk.view("/legacy/note.txt",
		    document.getElementById("v1view"));
		r.view = node.textContent;
		return r;
	}, cfg.gk);
	out.requests = seen.filter((s) => s.includes("/v2/list/"));
	await page.screenshot({ path: cfg.screenshot, fullPage: true });
	console.log(JSON.stringify(out));
} finally {
	await browser.close();
	server.close();
}
