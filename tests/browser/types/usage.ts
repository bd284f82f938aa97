// usage.ts - what a vendor's TypeScript code does with gatekeeper.js;
// must compile with tsc --strict against web/gatekeeper.d.ts.
import { Gatekeeper, GatekeeperError } from "./gatekeeper.js";
import type { ListItem, Progress, TokenRequest, UploadResult } from
    "./gatekeeper.js";

async function sign(req: TokenRequest): Promise<string> {
	const r = await fetch("/api/token", { method: "POST",
	    body: JSON.stringify(req) });
	return r.text();
}

export async function demo(file: File, viewer: HTMLElement): Promise<void> {
	const gk = new Gatekeeper({ url: "https://files.example", token: sign });
	const v1 = new Gatekeeper({ sign: (r) => "https://gk/app?path=" +
	    encodeURIComponent(r.path) + "&operation=" + r.operation });
	const ctl = new AbortController();
	const seen: Progress[] = [];
	try {
		const res: UploadResult = await gk.upload(file, { key: "t/a.pdf",
		    signal: ctl.signal, upload: "form",
		    onProgress: (p) => seen.push(p) });
		const n: number = res.size;
		const items: ListItem[] = [];
		for await (const it of gk.list("t/", { limit: 10 }))
			items.push(it);
		const u: string = await gk.url(items[0].key);
		const node: HTMLElement = await gk.view("t/a.pdf", viewer);
		const w: Window | null = await v1.open("/x/y.txt");
		const b: Blob = await gk.blob("t/a.pdf");
		console.log(n, u, node.tagName, w, b.size, gk.protocol === 2);
	} catch (e) {
		if (e instanceof GatekeeperError && e.kind !== "aborted")
			console.log(e.status, e.message, e.requestId, e.body?.msg);
	}
}
