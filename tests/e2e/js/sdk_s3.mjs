// The AWS SDK for JavaScript v3 against the gatekeeper's S3 endpoint:
// PutObject sends an aws-chunked body with a CRC32 trailer by default
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER). Prints one JSON line of results.
// usage: node sdk_s3.mjs ENDPOINT BUCKET KEY ACCESS_KEY SECRET [bad]
import { S3Client, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";

const [endpoint, bucket, key, ak, sk, mode] = process.argv.slice(2);
const s3 = new S3Client({
	endpoint, region: "us-east-1", forcePathStyle: true,
	credentials: { accessKeyId: ak, secretAccessKey: sk },
});
const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
for (let i = 0; i < body.length; i += 4099) body[i] = i & 0xff;
const out = {};
if (mode === "bad") {
	// a wrong trailing checksum: the SDK's middleware stack lets us
	// rewrite the trailer value it computed
	s3.middlewareStack.add((next) => async (args) => {
		const req = args.request;
		const orig = req.body;
		if (orig && typeof orig.pipe === "function") {
			const { Transform } = await import("node:stream");
			const t = new Transform({
				transform(chunk, enc, cb) {
					const s = chunk.toString("latin1");
					cb(null, Buffer.from(s.replace(
					    /x-amz-checksum-crc32:[A-Za-z0-9+\/=]+/,
					    "x-amz-checksum-crc32:AAAAAA=="), "latin1"));
				},
			});
			req.body = orig.pipe(t);
		}
		return next(args);
	}, { step: "finalizeRequest", name: "badTrailer", priority: "low" });
}
try {
	// a stream body: the SDK sends it aws-chunked with a CRC32 trailer
	const { Readable } = await import("node:stream");
	const stream = Readable.from([body.subarray(0, 1000000),
	    body.subarray(1000000)]);
	const put = await s3.send(new PutObjectCommand({ Bucket: bucket,
	    Key: key, Body: stream, ContentLength: body.length }));
	out.put = { etag: put.ETag, crc32: put.ChecksumCRC32 || null };
	const get = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
	const got = Buffer.from(await get.Body.transformToByteArray());
	out.same = Buffer.compare(got, body) === 0;
	out.len = got.length;
} catch (e) {
	out.error = e.name || String(e); out.message = String(e.message || e).slice(0, 300);
	out.status = e.$metadata ? e.$metadata.httpStatusCode : null;
}
console.log(JSON.stringify(out));
