/*
 * gatekeeper.js - the browser side of S3 Gatekeeper, protocols v1 and v2.
 * One dependency-free ES module; the gatekeeper serves it at /gatekeeper.js,
 * a classic-script build of this same text at /gatekeeper.classic.js
 * (window.Gatekeeper, window.GatekeeperError) and the TypeScript
 * declarations at /gatekeeper.d.ts.
 *
 * The vendor's server only signs (a v2 token, or a v1 URL) after its user
 * logs in; the browser takes the signature straight to the gatekeeper, so
 * no byte of any object passes through the vendor.
 *
 *   import { Gatekeeper } from "https://files.clinic.example/gatekeeper.js";
 *   const gk = new Gatekeeper({
 *       url: "https://files.clinic.example",
 *       token: (req) => myVendorApi.sign(req),   // {op, key} or {op, prefix}
 *   });
 *   await gk.upload(file, { key: "tickets/7/scan.pdf",
 *       onProgress: (p) => bar.value = p.fraction, signal: ctl.signal });
 *   for await (const item of gk.list("tickets/7/")) console.log(item.key);
 *   await gk.view("tickets/7/scan.pdf", document.getElementById("viewer"));
 *
 * Every failure rejects with a GatekeeperError: status (the HTTP status,
 * 0 when there was none), message (the gatekeeper's "msg"), requestId
 * (its X-Request-Id, the audit row's id) and kind ("http", "network",
 * "aborted" or "usage"); a cancel has name "AbortError".
 *
 * This file has no export keyword but the last line: the classic build is
 * this text without that line, wrapped in a function.
 */

class GatekeeperError extends Error {
	constructor(message, init) {
		super(message);
		init = init || {};
		this.name = init.kind === "aborted" ? "AbortError" :
		    "GatekeeperError";
		this.kind = init.kind || "http";
		this.status = init.status || 0;
		this.requestId = init.requestId || null;
		this.body = init.body || null;
	}
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|csv))/;
const EXT_TYPES = {
	pdf: "application/pdf", png: "image/png", jpg: "image/jpeg",
	jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
	txt: "text/plain", csv: "text/csv", json: "application/json",
	log: "text/plain", md: "text/plain",
};

function aborted() {
	return new GatekeeperError("the request was cancelled",
	    { kind: "aborted" });
}

function usage(msg) {
	return new GatekeeperError(msg, { kind: "usage" });
}

/* Each path segment percent-encoded, the slashes kept. */
function encodeKey(key) {
	return String(key).split("/").map(encodeURIComponent).join("/");
}

function parseJson(text) {
	try {
		return JSON.parse(text);
	} catch (e) {
		return null;
	}
}

function httpError(status, statusText, text, requestId) {
	const body = parseJson(text);
	const msg = body && typeof body.msg === "string" ? body.msg :
	    (status + " " + (statusText || "error")).trim();
	return new GatekeeperError(msg, { status, requestId, body });
}

async function checked(resp) {
	if (resp.ok)
		return resp;
	throw httpError(resp.status, resp.statusText, await resp.text(),
	    resp.headers.get("X-Request-Id"));
}

async function fetchOr(url, init) {
	try {
		return await fetch(url, Object.assign({ mode: "cors",
		    credentials: "omit", cache: "no-store" }, init));
	} catch (e) {
		if (init && init.signal && init.signal.aborted)
			throw aborted();
		throw new GatekeeperError("network error: " + e.message,
		    { kind: "network" });
	}
}

/*
 * One XMLHttpRequest with real upload progress and cancel. body is a
 * File/Blob (sent from disk, never read into memory) or a FormData
 * holding one. Resolves with the parsed JSON answer (or {}).
 */
function xhrSend(method, url, body, headers, opts) {
	return new Promise((resolve, reject) => {
		const signal = opts.signal;
		if (signal && signal.aborted) {
			reject(aborted());
			return;
		}
		const xhr = new XMLHttpRequest();
		xhr.open(method, url);
		for (const [k, v] of Object.entries(headers || {}))
			xhr.setRequestHeader(k, v);
		const onAbort = () => xhr.abort();
		if (signal)
			signal.addEventListener("abort", onAbort, { once: true });
		const done = () => {
			if (signal)
				signal.removeEventListener("abort", onAbort);
		};
		/* in the file's bytes, also when a form wraps it */
		if (opts.onProgress)
			xhr.upload.onprogress = (e) => {
				const f = e.lengthComputable && e.total > 0 ?
				    Math.min(1, e.loaded / e.total) : 0;
				opts.onProgress({ loaded: Math.round(f * opts.size),
				    total: opts.size, fraction: f });
			};
		xhr.onload = () => {
			done();
			if (xhr.status >= 200 && xhr.status < 300) {
				resolve(parseJson(xhr.responseText) || {});
				return;
			}
			reject(httpError(xhr.status, xhr.statusText,
			    xhr.responseText,
			    xhr.getResponseHeader("X-Request-Id")));
		};
		xhr.onerror = () => {
			done();
			reject(new GatekeeperError("network error",
			    { kind: "network" }));
		};
		xhr.onabort = () => {
			done();
			reject(aborted());
		};
		xhr.send(body);
	});
}

class Gatekeeper {
	/*
	 * opts.url: the gatekeeper's base URL (default: this page's origin).
	 * Protocol v2: opts.token(request) returns (or resolves to) a token
	 * for request = {op: "put"|"get", key} or {op: "list", prefix}.
	 * Protocol v1: opts.sign(request) returns a signed URL for
	 * request = {operation: "PUT_Object"|"GET_Object"|"GET_Bucket", path}.
	 * opts.upload: "auto" (v2: the streamed PUT where the store takes
	 * bodies, as /gatekeeper.json says, else the POST form; a 405 to the
	 * PUT also falls back to the form), "put" or "form".
	 */
	constructor(opts) {
		opts = opts || {};
		const here = typeof location !== "undefined" ? location.origin :
		    "";
		this.base = String(opts.url || here).replace(/\/+$/, "");
		if (typeof opts.token === "function") {
			this.protocol = 2;
			this._token = opts.token;
		} else if (typeof opts.sign === "function") {
			this.protocol = 1;
			this._sign = opts.sign;
		} else {
			throw usage("Gatekeeper needs a token (v2) or sign (v1) " +
			    "function");
		}
		this.uploadMode = opts.upload || "auto";
	}

	async _auth(req) {
		const t = await this._token(req);
		if (typeof t !== "string" || t === "")
			throw usage("the token function returned no token");
		return { Authorization: "Bearer " + t };
	}

	/* Uploads file (a File or Blob) to opts.key (default: the file's
	 * name). Resolves with the gatekeeper's answer {key, size, ...}. */
	async upload(file, opts) {
		opts = opts || {};
		const key = opts.key || file.name;
		if (!key)
			throw usage("upload needs a key");
		const x = { onProgress: opts.onProgress, signal: opts.signal,
		    size: file.size };
		if (this.protocol === 1) {
			const signed = await this._sign({
			    operation: "PUT_Object", path: key });
			const resp = await checked(await fetchOr(signed,
			    { signal: opts.signal }));
			const ret = (await resp.json()).clientReturn;
			return await this._postForm(ret, file, x);
		}
		let mode = opts.upload || this.uploadMode;
		if (mode === "auto" && !(await this._bodyPut()))
			mode = "form";
		if (mode !== "form") {
			const headers = await this._auth({ op: "put", key });
			try {
				return await xhrSend("PUT", this.base +
				    "/v2/objects/" + encodeKey(key), file,
				    headers, x);
			} catch (e) {
				if (mode !== "auto" || e.status !== 405)
					throw e;
			}
		}
		const headers = await this._auth({ op: "put", key });
		const resp = await checked(await fetchOr(this.base +
		    "/v2/uploads/" + encodeKey(key),
		    { method: "POST", headers, signal: opts.signal }));
		return await this._postForm(await resp.json(), file, x);
	}

	/* Whether the store takes PUT bodies (/gatekeeper.json, asked once);
	 * when the gatekeeper does not say, try the PUT. */
	async _bodyPut() {
		if (!this._caps)
			this._caps = fetchOr(this.base + "/gatekeeper.json")
			    .then((r) => r.ok ? r.json() : null)
			    .catch(() => null);
		const caps = await this._caps;
		return !caps || caps.v2_put !== false;
	}

	async _postForm(ret, file, x) {
		const form = new FormData();
		for (const [k, v] of Object.entries(ret.fields))
			form.append(k, v);
		form.append("file", file);
		const res = await xhrSend("POST", ret.url, form, null, x);
		/* a bucket answers 204 with no body: the object is stored */
		return Object.assign({ msg: "Success", key: ret.fields.key,
		    size: file.size, error: false }, res);
	}

	/*
	 * The objects under prefix, an async iterator of {key, size,
	 * lastModified}, fetched page by page (v2: opts.limit per page, a
	 * fresh token each; v1: one page of keys, size and lastModified
	 * null).
	 */
	async *list(prefix, opts) {
		opts = opts || {};
		if (this.protocol === 1) {
			const signed = await this._sign({
			    operation: "GET_Bucket", path: prefix });
			const resp = await checked(await fetchOr(signed,
			    { signal: opts.signal }));
			for (const key of (await resp.json()).contents)
				yield { key, size: null, lastModified: null };
			return;
		}
		let after = null;
		do {
			const q = new URLSearchParams();
			if (opts.limit)
				q.set("limit", String(opts.limit));
			if (after !== null)
				q.set("start_after", after);
			const headers = await this._auth({ op: "list", prefix });
			const qs = q.toString();
			const resp = await checked(await fetchOr(this.base +
			    "/v2/list/" + encodeKey(prefix) + (qs ? "?" + qs :
			    ""), { headers, signal: opts.signal }));
			const page = await resp.json();
			for (const it of page.items)
				yield { key: it.key, size: it.size,
				    lastModified: it.last_modified };
			after = page.next;
		} while (after !== null && after !== undefined);
	}

	/* A short-lived URL that reads key (v2: the gatekeeper's data URL
	 * or a presigned bucket URL; v1: the signed request, which
	 * redirects to one). */
	async url(key, opts) {
		opts = opts || {};
		if (this.protocol === 1)
			return await this._sign({ operation: "GET_Object",
			    path: key });
		const headers = await this._auth({ op: "get", key });
		headers.Accept = "application/json";
		const resp = await checked(await fetchOr(this.base +
		    "/v2/objects/" + encodeKey(key),
		    { headers, signal: opts.signal }));
		return (await resp.json()).url;
	}

	/* Opens key in a new tab. Call it from a click handler: the tab is
	 * opened at once and pointed at the object when its URL arrives. */
	async open(key, opts) {
		const w = window.open("about:blank", "_blank");
		try {
			const u = await this.url(key, opts);
			if (w) {
				w.opener = null;
				w.location.href = u;
			}
			return w;
		} catch (e) {
			if (w)
				w.close();
			throw e;
		}
	}

	/* The object's bytes as a Blob (typed by the gatekeeper's answer). */
	async blob(key, opts) {
		opts = opts || {};
		const u = await this.url(key, opts);
		const resp = await checked(await fetchOr(u,
		    { signal: opts.signal }));
		return await resp.blob();
	}

	/*
	 * Renders key inside element: an image as <img>, a PDF in an
	 * <iframe> (the browser's own viewer), text as <pre> (never as
	 * HTML), anything else as a download link. Replaces element's
	 * content; resolves with the element it added.
	 */
	async view(key, element, opts) {
		const blob = await this.blob(key, opts);
		const ext = String(key).split(".").pop().toLowerCase();
		let type = blob.type.split(";")[0].trim().toLowerCase();
		/* a bucket often answers a generic type (S3's default is
		 * binary/octet-stream): the key's extension tells then */
		if (!TEXT_TYPES.test(type) && !type.startsWith("image/") &&
		    type !== "application/pdf")
			type = EXT_TYPES[ext] || "application/octet-stream";
		if (element._gkUrl)
			URL.revokeObjectURL(element._gkUrl);
		element._gkUrl = null;
		element.textContent = "";
		const name = String(key).split("/").pop();
		let node;
		if (TEXT_TYPES.test(type)) {
			node = document.createElement("pre");
			node.textContent = await blob.text();
		} else {
			const typed = blob.type === type ? blob :
			    new Blob([blob], { type });
			element._gkUrl = URL.createObjectURL(typed);
			if (type.startsWith("image/")) {
				node = document.createElement("img");
				node.alt = name;
			} else if (type === "application/pdf") {
				node = document.createElement("iframe");
				node.title = name;
			} else {
				node = document.createElement("a");
				node.download = name;
				node.textContent = "Download " + name;
			}
			node[node.tagName === "A" ? "href" : "src"] =
			    element._gkUrl;
		}
		node.dataset.gkKey = key;
		node.dataset.gkType = type;
		node.dataset.gkSize = String(blob.size);
		element.append(node);
		if (node.tagName === "IMG")
			await node.decode().catch(() => {});
		return node;
	}
}

export { Gatekeeper, GatekeeperError };
