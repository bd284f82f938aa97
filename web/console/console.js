/*
 * console.js - the customer's console (/admin/). Everything it shows comes
 * from the gatekeeper's own JSON under /admin/; the charts are SVG drawn
 * here. No inline script or style anywhere (the page's CSP forbids them).
 */
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const state = { csrf: "", cursors: [], next: null, rows: [], newest: null,
    tailTimer: null, seen: new Set() };

function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (k === "class")
			e.className = v;
		else if (k.startsWith("data-"))
			e.setAttribute(k, v);
		else
			e[k] = v;
	}
	for (const k of kids)
		e.append(k instanceof Node ? k : String(k ?? ""));
	return e;
}

function svg(tag, attrs, text) {
	const e = document.createElementNS(SVG, tag);
	for (const [k, v] of Object.entries(attrs || {}))
		e.setAttribute(k, v);
	if (text !== undefined)
		e.textContent = text;
	return e;
}

function toast(msg) {
	const t = $("toast");
	t.textContent = msg;
	t.className = "show";
	clearTimeout(toast.timer);
	toast.timer = setTimeout(() => { t.className = ""; }, 4000);
}

class ApiError extends Error {
	constructor(status, msg) { super(msg); this.status = status; }
}

async function api(path, opts) {
	opts = opts || {};
	const headers = Object.assign({ Accept: "application/json" },
	    opts.headers || {});
	if (opts.method && opts.method !== "GET" && state.csrf)
		headers["X-CSRF-Token"] = state.csrf;
	const r = await fetch(path, { method: opts.method || "GET", headers,
	    credentials: "same-origin", cache: "no-store" });
	let body = null;
	try { body = await r.json(); } catch (e) { /* not JSON */ }
	if (!r.ok)
		throw new ApiError(r.status, body && body.msg ? body.msg :
		    r.status + " " + r.statusText);
	return body;
}

/* ---- sign in ----------------------------------------------------------- */

function showLogin(msg) {
	$("app").hidden = true;
	$("logout").hidden = true;
	$("login").hidden = false;
	$("who").textContent = "";
	$("login-err").textContent = msg || "";
}

async function start() {
	try {
		const s = await api("/admin/api/session");
		state.csrf = s.csrf;
		$("who").textContent = s.id + " · " + s.instance;
		$("login").hidden = true;
		$("app").hidden = false;
		$("logout").hidden = false;
		document.body.dataset.ready = "1";
		await search();
	} catch (e) {
		showLogin(e.status === 401 ? "" : e.message);
		document.body.dataset.ready = "1";
	}
}

$("login-form").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	try {
		const r = await api("/admin/api/login", { method: "POST",
		    headers: { Authorization: "Bearer " + $("token").value } });
		$("token").value = "";
		state.csrf = r.csrf;
		await start();
		if (!$("login").hidden)
			showLogin("Signed in, but the browser did not keep the " +
			    "session cookie (it is Secure): open the console " +
			    "over HTTPS, or on localhost.");
	} catch (e) {
		showLogin(e.message);
	}
});

$("logout").addEventListener("click", async () => {
	try { await api("/admin/api/logout", { method: "POST" }); }
	catch (e) { /* gone already */ }
	state.csrf = "";
	stopTail();
	showLogin("Signed out.");
});

/* ---- tabs -------------------------------------------------------------- */

for (const b of document.querySelectorAll(".tab")) {
	b.addEventListener("click", () => {
		$("toast").className = "";
		for (const o of document.querySelectorAll(".tab"))
			o.classList.toggle("active", o === b);
		for (const p of document.querySelectorAll(".panel"))
			p.hidden = p.id !== "tab-" + b.dataset.tab;
		({ charts: loadCharts, integrity: loadIntegrity,
		    policy: loadPolicy, grants: loadGrants,
		    audit: () => {} })[b.dataset.tab]();
	});
}

/* ---- audit ------------------------------------------------------------- */

function isoOf(local) {
	return new Date(local).toISOString().replace(/\.\d+Z$/, "Z");
}

function filterParams() {
	const f = new FormData($("filters"));
	const q = new URLSearchParams();
	for (const [k, v] of f.entries()) {
		const s = String(v).trim();
		if (s === "")
			continue;
		q.set(k, k === "from" || k === "to" ? isoOf(s) : s);
	}
	return q;
}

function row(r, fresh) {
	const tr = el("tr", { class: r.decision + (fresh ? " fresh" : ""),
	    "data-id": r.id },
	    el("td", { class: "time" },
	    r.time.replace("T", " ").replace(/\.\d+Z$/, "")),
	    el("td", {}, r.client_ip || ""), el("td", {}, r.country || ""),
	    el("td", {}, r.protocol || ""), el("td", {}, r.operation || ""),
	    el("td", { class: "key" }, r.path || ""), el("td", {}, r.status),
	    el("td", {}, r.decision || ""),
	    el("td", { class: "msg" }, r.message || ""),
	    el("td", {}, r.sub || ""), el("td", {}, r.request_id || ""));
	return tr;
}

function render(rows) {
	const tb = $("records").tBodies[0];
	tb.textContent = "";
	for (const r of rows)
		tb.append(row(r, false));
}

async function search(cursor) {
	const q = filterParams();
	if (cursor)
		q.set("cursor", cursor);
	try {
		const r = await api("/admin/audit?" + q);
		state.rows = r.records;
		state.next = r.next_cursor;
		state.seen = new Set(r.records.map((x) => x.id));
		if (!cursor)
			state.newest = r.records.length ? r.records[0].time : null;
		render(r.records);
		$("older").disabled = !r.next_cursor;
		$("newest").disabled = state.cursors.length === 0;
		$("audit-status").textContent = r.records.length + " record(s)" +
		    (state.cursors.length ? ", page " + (state.cursors.length + 1) :
		    "") + (r.next_cursor ? ", more below" : "");
	} catch (e) {
		$("audit-status").textContent = e.message;
		toast(e.message);
		if (e.status === 401)
			showLogin("Your session ended.");
	}
}

$("filters").addEventListener("submit", (ev) => {
	ev.preventDefault();
	state.cursors = [];
	search();
});
$("clear").addEventListener("click", () => {
	$("filters").reset();
	state.cursors = [];
	search();
});
$("older").addEventListener("click", () => {
	if (!state.next)
		return;
	state.cursors.push(state.next);
	search(state.next);
});
$("newest").addEventListener("click", () => {
	state.cursors = [];
	search();
});

/* live tail: records newer than the newest shown, with the same filters */
async function tailOnce() {
	const q = filterParams();
	if (state.newest)
		q.set("from", state.newest);
	q.set("limit", "200");
	try {
		const r = await api("/admin/api/tail?" + q);
		const tb = $("records").tBodies[0];
		const fresh = r.records.filter((x) => !state.seen.has(x.id));
		for (const x of fresh.reverse()) {
			state.seen.add(x.id);
			tb.prepend(row(x, true));
			state.newest = x.time;
		}
		if (fresh.length)
			$("audit-status").textContent = "live: " + fresh.length +
			    " new record(s)";
	} catch (e) {
		toast(e.message);
	}
}

function stopTail() {
	clearInterval(state.tailTimer);
	state.tailTimer = null;
	$("tail").checked = false;
}

$("tail").addEventListener("change", () => {
	if (!$("tail").checked)
		return stopTail();
	state.cursors = [];
	search().then(() => {
		state.tailTimer = setInterval(tailOnce, 1000);
	});
});

/* export: every record of the current filter, page by page */
const COLS = ["id", "time", "request_id", "client_ip", "country", "origin",
    "protocol", "operation", "root", "path", "status", "decision", "message",
    "bytes", "duration_us", "kid", "sub", "jti", "user_agent",
    "instance_id", "seq", "hash"];

function csvCell(v) {
	/* control characters a terminal acts on (but tab, CR, LF) as
	 * U+FFFD, as the CLI's CSV */
	let s = (v === null || v === undefined ? "" : String(v))
	    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g, "\ufffd");
	/* a cell a spreadsheet would run as a formula is kept as text */
	if (/^[=+\-@\t\r]/.test(s))
		s = "'" + s;
	return '"' + s.replace(/"/g, '""') + '"';
}

async function exportAll(format) {
	const q = filterParams();
	q.set("limit", "1000");
	const all = [];
	let cursor = null;
	try {
		do {
			if (cursor)
				q.set("cursor", cursor);
			const r = await api("/admin/audit?" + q);
			all.push(...r.records);
			cursor = r.next_cursor;
		} while (cursor && all.length < 1000000);
	} catch (e) {
		toast("Export failed: " + e.message);
		return;
	}
	let blob;
	if (format === "csv") {
		const lines = [COLS.join(",")];
		for (const r of all)
			lines.push(COLS.map((c) => csvCell(r[c])).join(","));
		blob = new Blob([lines.join("\r\n") + "\r\n"],
		    { type: "text/csv" });
	} else {
		blob = new Blob([all.map((r) => JSON.stringify(r)).join("\n") +
		    (all.length ? "\n" : "")], { type: "application/x-ndjson" });
	}
	const a = el("a", { href: URL.createObjectURL(blob),
	    download: "audit-" + new Date().toISOString().slice(0, 19)
	    .replace(/:/g, "") + (format === "csv" ? ".csv" : ".jsonl") });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
	$("audit-status").textContent = "exported " + all.length + " record(s)";
}
$("export-csv").addEventListener("click", () => exportAll("csv"));
$("export-json").addEventListener("click", () => exportAll("json"));

/* ---- charts ------------------------------------------------------------ */

function timeChart(box, buckets) {
	const W = 900, H = 220, L = 40, B = 24, T = 8;
	const max = Math.max(1, ...buckets.map((b) => b.allow + b.deny +
	    b.error));
	const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
	    "aria-label": "requests over time by decision" });
	const bw = (W - L - 4) / buckets.length;
	for (const f of [0, 0.5, 1]) {
		const y = T + (H - T - B) * (1 - f);
		s.append(svg("line", { x1: L, x2: W, y1: y, y2: y }));
		s.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" },
		    String(Math.round(max * f))));
	}
	buckets.forEach((b, i) => {
		let y = H - B;
		for (const d of ["allow", "deny", "error"]) {
			const h = (H - T - B) * b[d] / max;
			const r = svg("rect", { x: L + i * bw + 1, y: y - h,
			    width: Math.max(1, bw - 2), height: h, class: d,
			    "data-t": b.t, "data-decision": d, "data-n": b[d] });
			r.append(svg("title", {}, `${b.t}: ${b[d]} ${d}`));
			s.append(r);
			y -= h;
		}
		if (i % Math.ceil(buckets.length / 6) === 0)
			s.append(svg("text", { x: L + i * bw, y: H - 6 },
			    b.t.slice(5, 16).replace("T", " ")));
	});
	box.textContent = "";
	box.append(s);
}

function barChart(box, items, label) {
	const W = 420, rowH = 22, L = 150;
	const H = Math.max(1, items.length) * rowH + 6;
	const max = Math.max(1, ...items.map((x) => x.n));
	const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
	    "aria-label": label });
	if (!items.length)
		s.append(svg("text", { x: 4, y: 16 }, "none"));
	items.forEach((x, i) => {
		const y = 3 + i * rowH;
		const w = (W - L - 50) * x.n / max;
		s.append(svg("text", { x: L - 6, y: y + 14, "text-anchor": "end" },
		    x.key.length > 24 ? x.key.slice(0, 23) + "…" : x.key));
		const r = svg("rect", { x: L, y: y + 2, width: Math.max(1, w),
		    height: rowH - 6, class: "bar", "data-key": x.key,
		    "data-n": x.n });
		r.append(svg("title", {}, `${x.key}: ${x.n}`));
		s.append(r);
		s.append(svg("text", { x: L + w + 4, y: y + 14 }, String(x.n)));
	});
	box.textContent = "";
	box.append(s);
}

async function loadCharts() {
	const span = Number($("range").value);
	const to = new Date(Date.now() + 60000);
	const from = new Date(to - span * 1000);
	const q = new URLSearchParams({ from: isoOf(from), to: isoOf(to),
	    buckets: span <= 3600 ? "30" : "24" });
	try {
		const st = await api("/admin/api/stats?" + q);
		timeChart($("chart-time"), st.buckets);
		barChart($("chart-ips"), st.top_ips, "top client addresses");
		barChart($("chart-countries"), st.top_countries,
		    "top countries");
		barChart($("chart-denials"), st.denials, "denials by reason");
		$("charts-status").textContent = st.rows + " record(s)" +
		    (st.truncated ? " (first ones only)" : "");
		document.body.dataset.charts = "1";
	} catch (e) {
		$("charts-status").textContent = e.message;
	}
}
$("charts-refresh").addEventListener("click", loadCharts);
$("range").addEventListener("change", loadCharts);

/* ---- integrity --------------------------------------------------------- */

function showVerify(v) {
	const box = $("verify-result");
	box.textContent = "";
	$("problems").textContent = "";
	if (!v) {
		box.append(el("span", { class: "note" }, "not verified yet"));
		return;
	}
	box.append(el("span", { class: "verdict " + (v.ok ? "allow" : "deny"),
	    id: "verdict" }, v.ok ? "OK, the chain verifies" : "NOT OK"),
	    " ", el("span", { class: "note" }, `${v.records} record(s), ` +
	    `${v.checkpoints} checkpoint(s), ${v.problem_count} problem(s), ` +
	    `at ${v.at}, ${v.took_ms} ms`));
	for (const p of v.problems)
		$("problems").append(el("li", { class: "err" }, p));
}

async function loadIntegrity() {
	try {
		const r = await api("/admin/api/integrity");
		const cp = r.last_checkpoint;
		const dl = $("chain");
		dl.textContent = "";
		const add = (k, v, id) => dl.append(el("dt", {}, k),
		    el("dd", { id }, v));
		add("Instance", r.instance, "chain-instance");
		add("Audit store", r.backend, "chain-backend");
		add("Last signed checkpoint", cp ? `seq ${cp.seq}` : "none yet",
		    "chain-cp");
		add("Signed at", cp ? new Date(cp.time_us / 1000).toISOString() :
		    "", "chain-cp-time");
		showVerify(r.last_verify);
	} catch (e) {
		toast(e.message);
	}
}

/* The check runs on the gatekeeper's own thread: start it, then poll the
 * chain's status until the result of this job is there. */
async function waitVerify(job) {
	for (;;) {
		const r = await api("/admin/api/integrity");
		if (r.last_verify && r.last_verify.job >= job)
			return r.last_verify;
		await new Promise((ok) => setTimeout(ok, 400));
	}
}

$("verify").addEventListener("click", async () => {
	$("verify-result").textContent = "verifying…";
	$("verify").disabled = true;
	try {
		const r = await api("/admin/api/verify", { method: "POST" });
		showVerify(await waitVerify(r.verify.job));
	} catch (e) {
		$("verify-result").textContent = e.message;
	} finally {
		$("verify").disabled = false;
	}
});

/* ---- policy ------------------------------------------------------------ */

async function loadPolicy() {
	try {
		const p = await api("/admin/api/policy");
		const tb = $("settings").tBodies[0];
		tb.textContent = "";
		for (const s of p.settings)
			tb.append(el("tr", { "data-name": s.name },
			    el("td", {}, s.name), el("td", {}, s.value || "—")));
		$("policy-summary").textContent = p.summary;
		$("policy-loaded").textContent = "loaded " + p.loaded;
		const box = $("last-reload");
		box.textContent = "";
		if (!p.last_reload) {
			box.append(el("span", { class: "note" },
			    "no reload since the start"));
		} else if (!p.last_reload.changes.length) {
			box.append(el("span", { class: "note", id: "no-changes" },
			    "the last reload changed nothing"));
		} else {
			const t = el("table", { id: "changes" }, el("thead", {},
			    el("tr", {}, el("th", {}, "Setting"),
			    el("th", {}, "Before"), el("th", {}, "After"))));
			const body = el("tbody");
			for (const c of p.last_reload.changes)
				body.append(el("tr", { "data-name": c.name },
				    el("td", {}, c.name), el("td", {}, c.old),
				    el("td", {}, c.new)));
			t.append(body);
			box.append(t);
		}
	} catch (e) {
		toast(e.message);
	}
}

$("reload").addEventListener("click", async () => {
	$("reload-msg").textContent = "reloading…";
	try {
		const r = await api("/admin/reload", { method: "POST" });
		$("reload-msg").textContent = r.msg;
		$("reload-msg").className = "ok";
	} catch (e) {
		$("reload-msg").textContent = e.message;
		$("reload-msg").className = "err";
	}
	await loadPolicy();
});

$("tester").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	const q = new URLSearchParams();
	for (const [k, v] of new FormData($("tester")).entries())
		if (String(v).trim() !== "")
			q.set(k, String(v).trim());
	const box = $("test-result");
	box.textContent = "";
	try {
		const r = await api("/admin/api/policy/test?" + q);
		const ul = el("ul");
		for (const s of r.steps)
			ul.append(el("li", { class: s.ok ? "ok" : "err",
			    "data-check": s.check }, `${s.check}: ${s.detail}`));
		box.append(el("div", { class: "verdict " + r.decision,
		    id: "test-verdict", "data-decision": r.decision },
		    `${r.decision.toUpperCase()} (${r.status}) — ${r.msg}`),
		    el("div", { id: "test-rule" }, "decided by: " + r.rule), ul);
	} catch (e) {
		box.append(el("span", { class: "err" }, e.message));
	}
});

/* ---- grants ------------------------------------------------------------ */

async function loadGrants() {
	const tb = $("grants").tBodies[0];
	try {
		const r = await api("/admin/api/grants");
		tb.textContent = "";
		for (const g of r.grants) {
			const revoke = el("button", { type: "button",
			    class: "revoke", "data-id": g.id }, "Revoke");
			revoke.disabled = g.state === "revoked";
			revoke.addEventListener("click", () => revokeGrant(g));
			tb.append(el("tr", { "data-id": g.id,
			    "data-state": g.state },
			    el("td", { class: "name" }, g.name),
			    el("td", { class: "akid" }, g.access_key_id),
			    el("td", {}, g.prefix || "(all)"),
			    el("td", {}, g.ops),
			    el("td", {}, g.expires || "never"),
			    el("td", {}, g.ip.length ? g.ip.join(", ") : "any"),
			    el("td", {}, g.rate ? g.rate + "/s" : "—"),
			    el("td", { class: "state state-" + g.state }, g.state),
			    el("td", {}, g.created),
			    el("td", {}, g.revoked || ""),
			    el("td", {}, revoke)));
		}
		if (!r.grants.length)
			tb.append(el("tr", {}, el("td", { colSpan: 11,
			    class: "note" }, "no grants yet")));
	} catch (e) {
		tb.textContent = "";
		$("grant-err").textContent = e.message;
	}
}

async function revokeGrant(g) {
	if (!confirm(`Revoke ${g.name} (${g.access_key_id})? Every request ` +
	    "with its key is refused from now on."))
		return;
	try {
		await api("/admin/api/grants/revoke?" +
		    new URLSearchParams({ id: g.id }), { method: "POST" });
		toast(`${g.id} revoked`);
	} catch (e) {
		toast(e.message);
	}
	await loadGrants();
}

$("grant-form").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	const f = new FormData($("grant-form"));
	const q = new URLSearchParams();
	q.set("name", String(f.get("name")).trim());
	q.set("prefix", String(f.get("prefix")));
	q.set("ops", f.getAll("op").join(","));
	for (const k of ["expires", "ip", "rate"]) {
		const v = String(f.get(k) || "").trim();
		if (v !== "")
			q.set(k, v);
	}
	$("grant-err").textContent = "";
	try {
		const r = await api("/admin/api/grants?" + q, { method: "POST" });
		$("new-id").textContent = r.grant.id;
		$("new-akid").textContent = r.grant.access_key_id;
		$("new-secret").textContent = r.secret_access_key;
		$("grant-new").hidden = false;
		$("grant-form").reset();
	} catch (e) {
		$("grant-err").textContent = e.message;
	}
	await loadGrants();
});

/* the secret leaves the page once it has been copied */
$("grant-done").addEventListener("click", () => {
	$("new-secret").textContent = "";
	$("new-akid").textContent = "";
	$("grant-new").hidden = true;
});

start();
