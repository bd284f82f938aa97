// Type declarations for gatekeeper.js (served at /gatekeeper.d.ts).

/** What a v2 token must allow: one object, or a listing of a prefix. */
export type TokenRequest =
	| { op: "put" | "get"; key: string }
	| { op: "list"; prefix: string };

/** What a v1 signed URL must allow (path relative to the vendor's root). */
export interface SignRequest {
	operation: "PUT_Object" | "GET_Object" | "GET_Bucket";
	path: string;
}

export interface GatekeeperOptions {
	/** The gatekeeper's base URL; default: this page's origin. */
	url?: string;
	/** Protocol v2: a compact JWS from the vendor for the request. */
	token?: (req: TokenRequest) => string | Promise<string>;
	/** Protocol v1: a URL the vendor signed for the request. */
	sign?: (req: SignRequest) => string | Promise<string>;
	/** v2 uploads: "auto" (the streamed PUT where the store takes bodies,
	 *  as /gatekeeper.json says, else the POST form), "put" or "form".
	 *  Default "auto". */
	upload?: "auto" | "put" | "form";
}

export interface Progress {
	loaded: number;
	total: number;
	/** loaded / total, 0..1 */
	fraction: number;
}

export interface UploadOptions {
	/** Object key (v2) or path (v1); default: the file's name. */
	key?: string;
	onProgress?: (p: Progress) => void;
	signal?: AbortSignal;
	upload?: "auto" | "put" | "form";
}

export interface UploadResult {
	msg: string;
	key: string;
	size: number;
	error: false;
}

export interface ListItem {
	key: string;
	/** bytes; null for v1 listings */
	size: number | null;
	/** ISO 8601; null for v1 listings */
	lastModified: string | null;
}

export interface RequestOptions {
	signal?: AbortSignal;
}

export interface ListOptions extends RequestOptions {
	/** v2: items per page (1..1000) */
	limit?: number;
}

export declare class GatekeeperError extends Error {
	/** "AbortError" for a cancel, else "GatekeeperError" */
	name: string;
	kind: "http" | "network" | "aborted" | "usage";
	/** HTTP status, 0 when there was no answer */
	status: number;
	/** X-Request-Id of the answer (the audit row's id) */
	requestId: string | null;
	/** the gatekeeper's JSON answer, when there was one */
	body: { msg: string; error: boolean } | null;
}

export declare class Gatekeeper {
	constructor(opts: GatekeeperOptions);
	readonly protocol: 1 | 2;
	readonly base: string;
	upload(file: Blob | File, opts?: UploadOptions): Promise<UploadResult>;
	list(prefix: string, opts?: ListOptions): AsyncIterableIterator<ListItem>;
	url(key: string, opts?: RequestOptions): Promise<string>;
	open(key: string, opts?: RequestOptions): Promise<Window | null>;
	blob(key: string, opts?: RequestOptions): Promise<Blob>;
	view(key: string, element: HTMLElement,
	    opts?: RequestOptions): Promise<HTMLElement>;
}
