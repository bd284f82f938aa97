// client_s3.mjs CONFIG.json
// gatekeeper.js against a gatekeeper on the s3 store in redirect mode (a
// real bucket: Ceph RGW), from a page of another origin: the streamed PUT
// is refused (405), so upload() falls back to the POST form and the file
// goes from the browser straight to the bucket; list() and view() read
// through the gatekeeper's presigned URLs. Prints one JSON line.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { launch } from "./launch.mjs";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const vendorKey = crypto.createPrivateKey(cfg.privatePem);
const b64u = (b) => Buffer.from(b).toString("base64url");

function v2token(req) {
	const now = Math.floor(Date.now() / 1000);
	const claims = Object.assign({ aud: cfg.aud, sub: "s3-test",
	    op: req.op, iat: now, exp: now + 300 },
	    req.key !== undefined ? { key: req.key } : { prefix: req.prefix });
	const si = b64u(JSON.stringify({ alg: "EdDSA", kid: cfg.kid })) + "." +
	    b64u(JSON.stringify(claims));
	return si + "." + b64u(crypto.sign(null, Buffer.from(si), vendorKey));
}

const server = http.createServer((req, res) => {
	res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
	res.end(`<!doctype html><meta charset="utf-8"><title>vendor</title>
<input type="file" id="f"><div id="v"></div>
<script type="module">
import { Gatekeeper } from "${cfg.gk}/gatekeeper.js";
window.gkmod = { Gatekeeper };
document.title = "ready";
</script>`);
});
await new Promise((r) => server.listen(cfg.pagePort, "127.0.0.1", r));
const browser = await launch();
const out = {};
try {
	const page = await browser.context.newPage();
	const seen = [];
	page.on("requestfinished", async (r) => {
		const resp = await r.response();
		seen.push([r.method(), new URL(r.url()).host === new URL(cfg.gk)
		    .host ? "gk" : new URL(r.url()).origin === cfg.bucketOrigin ?
		    "bucket" : "other", new URL(r.url()).pathname,
		    resp ? resp.status() : 0]);
	});
	await page.exposeFunction("v2token", v2token);
	await page.goto(`http://127.0.0.1:${cfg.pagePort}/`);
	await page.waitForFunction(() => document.title === "ready");
	await page.setInputFiles("#f", cfg.file);
	Object.assign(out, await page.evaluate(async (gkBase) => {
		const gk = new window.gkmod.Gatekeeper({ url: gkBase,
		    token: window.v2token });
		const file = document.getElementById("f").files[0];
		const ev = [];
		const r = {};
		r.put = await gk.upload(file, { key: "scans/" + file.name,
		    onProgress: (p) => ev.push(p.loaded) });
		r.events = ev.length;
		r.last = ev[ev.length - 1];
		r.list = [];
		for await (const it of gk.list("scans/"))
			r.list.push([it.key, it.size]);
		const node = await gk.view("scans/" + file.name,
		    document.getElementById("v"));
		r.view = { tag: node.tagName, size: Number(node.dataset.gkSize),
		    w: node.naturalWidth };
		return r;
	}, cfg.gk));
	out.requests = seen;
	console.log(JSON.stringify(out));
} finally {
	await browser.close();
	server.close();
}
