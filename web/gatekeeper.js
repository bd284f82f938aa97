/*
 * gatekeeper.js - the browser side of S3 Gatekeeper (protocol v1).
 *
 * The vendor's server signs a request URL after the user logs in; the
 * browser takes it straight to the gatekeeper, so the data never passes
 * through the vendor. Every call rejects with an Error whose message is
 * the gatekeeper's JSON "msg".
 *
 *   const gk = new Gatekeeper();
 *   const blob = await gk.getObject(signedGetUrl);     // GET_Object
 *   const keys = await gk.list(signedListUrl);         // GET_Bucket
 *   await gk.upload(signedPutUrl, file, onProgress);   // PUT_Object
 */
(function (root) {
	"use strict";

	async function failure(resp) {
		let msg = resp.status + " " + resp.statusText;
		try {
			const body = await resp.json();
			if (body && body.msg)
				msg = body.msg;
		} catch (e) { /* not JSON */ }
		const err = new Error(msg);
		err.status = resp.status;
		return err;
	}

	class Gatekeeper {
		/* GET_Object: follows the 302 to the short-lived data URL and
		 * returns the bytes as a Blob. */
		async getObject(signedUrl) {
			const resp = await fetch(signedUrl, { mode: "cors",
			    credentials: "omit", cache: "no-store" });
			if (!resp.ok)
				throw await failure(resp);
			return await resp.blob();
		}

		/* GET_Bucket: the keys under the signed folder, relative to the
		 * root (each usable as a 'path' for GET_Object). */
		async list(signedUrl) {
			const resp = await fetch(signedUrl, { mode: "cors",
			    credentials: "omit", cache: "no-store" });
			if (!resp.ok)
				throw await failure(resp);
			return (await resp.json()).contents;
		}

		/* PUT_Object: asks for the signed upload form, then posts the
		 * file to the upload URL it names (the gatekeeper's own endpoint
		 * or S3). onProgress(sent, total) is optional. */
		async upload(signedUrl, file, onProgress) {
			const resp = await fetch(signedUrl, { mode: "cors",
			    credentials: "omit", cache: "no-store" });
			if (!resp.ok)
				throw await failure(resp);
			const ret = (await resp.json()).clientReturn;
			const form = new FormData();
			for (const [k, v] of Object.entries(ret.fields))
				form.append(k, v);
			form.append("file", file);
			return await new Promise((resolve, reject) => {
				const xhr = new XMLHttpRequest();
				xhr.open("POST", ret.url);
				if (onProgress)
					xhr.upload.onprogress = (e) =>
					    onProgress(e.loaded, e.total);
				xhr.onload = () => {
					let body = {};
					try { body = JSON.parse(xhr.responseText); }
					catch (e) { /* S3 answers 204, empty */ }
					if (xhr.status >= 200 && xhr.status < 300)
						resolve(body);
					else
						reject(Object.assign(new Error(body.msg ||
						    ("upload failed: " + xhr.status)),
						    { status: xhr.status }));
				};
				xhr.onerror = () => reject(new Error("network error"));
				xhr.send(form);
			});
		}
	}

	root.Gatekeeper = Gatekeeper;
})(typeof window !== "undefined" ? window : globalThis);
