// jose-interop.mjs - npm's jose against the gatekeeper's v2 tokens
// (tests/e2e/test_v2.py):
//   node jose-interop.mjs sign   ALG KID PRIVATE-KEY-FILE AUDIENCE OBJECT-KEY
//   node jose-interop.mjs verify ALG KID PUBLIC-KEY-FILE AUDIENCE OBJECT-KEY TOKEN
import * as jose from 'jose';
import fs from 'fs';

const [mode, alg, kid, keyPath, aud, objKey, tok] = process.argv.slice(2);
const material = fs.readFileSync(keyPath, 'utf8');
if (mode === 'sign') {
  const key = alg === 'HS256' ? new TextEncoder().encode(material.trim())
    : await jose.importPKCS8(material, alg);
  const t = await new jose.SignJWT({ op: 'get', key: objKey })
    .setProtectedHeader({ alg, kid }).setAudience(aud).setSubject('jose-user')
    .setJti('jose-' + alg + '-' + Date.now()).setIssuedAt()
    .setExpirationTime('5m').sign(key);
  console.log(t);
} else {
  const key = await jose.importSPKI(material, alg);
  const { payload, protectedHeader } = await jose.jwtVerify(tok, key,
    { audience: aud, algorithms: [alg] });
  console.log(JSON.stringify({ payload, protectedHeader }));
}
